"""Other readings of the shipped judges, tried as extra inputs of the key-point verdicts (issue #23):
does anything the judges already give, read differently, separate stated points better on our
graded answers? Each set of inputs goes into a logistic model fitted on dev (stated 1, partly 1/2,
missing or contradicted 0) and is measured on test by AUC, stated vs missing or contradicted.

- base: what the verdict model reads (the fact judge's log-odds on the whole answer, the evidence's
  similarity, the terms, cross-language);
- + structural: the behavioural judge's log-odds too (the answer reads the key points);
- + sentences: the fact judge on each sentence and each pair of adjacent sentences, the best;
- + other language: the fact judge on the key points in the item's other language, the best;
- and each reading alone, as the judge's credit (P(stated) + P(partly) / 2).

    python bench/judge_readings.py       # writes bench/results/judge_readings.json (about 3 minutes)
"""
from __future__ import annotations

import math

import numpy as np
from common import auc, logistic, write

from bot.corpus import language_of
from bot.evaluation import datasets
from bot.grading import judged, lexical, verdicts
from bot.judge.model import get_judge

NEGATIVE = ("missing", "contradicted")
CLIP = 4.0


def log_odds(v) -> float:
    return max(-CLIP, min(CLIP, math.log(max(v.stated, 1e-6)) - math.log(max(v.missing, 1e-6))))


def readings(split: str) -> list[dict]:
    facts, stories = get_judge(False), get_judge(True)
    out = []
    for row in datasets.load_graded(split).rows:
        if not row.labels or row.structural:
            continue
        lang = language_of(row.answer)
        kind = verdicts.kind_of(language_of(" ".join(row.key_points) or row.reference), lang)
        shown = judged.points_for(row.key_points, row.translations or {}, lang)
        whole, story = facts.judge(shown, row.answer), stories.judge(shown, row.answer)
        found = verdicts.gather(row.key_points, row.answer, kind, (row.translations or {}).get(lang))
        said = lexical.sentences(row.answer)
        parts = list(dict.fromkeys(said + [a + b for a, b in zip(said, said[1:])])) if len(said) > 1 else []
        by_part = [facts.judge(shown, p) for p in parts]
        versions = [row.key_points] + [t for t in (row.translations or {}).values() if len(t) == len(row.key_points)]
        others = [facts.judge(v, row.answer) for v in versions if v != shown]
        for i, label in row.labels.items():
            obs = verdicts.observations(found[i], None, whole[i])
            out.append({"label": label, "base": [obs[k] for k in ("bias", "judge", "similarity", "terms", "cross")],
                        "structural": log_odds(story[i]),
                        "sentences": max([log_odds(p[i]) for p in by_part], default=log_odds(whole[i])),
                        "other language": max([log_odds(o[i]) for o in others], default=log_odds(whole[i])),
                        "credit": {"fact judge": whole[i].credit, "structural": story[i].credit,
                                   "sentences": max([p[i].credit for p in by_part], default=whole[i].credit),
                                   "other language": max([o[i].credit for o in others], default=whole[i].credit)}})
    return out


def main() -> None:
    data = {s: readings(s) for s in ("dev", "test")}
    out: dict = {"points": {s: len(v) for s, v in data.items()}, "verdicts": {}, "alone": {}}
    for extra in ([], ["structural"], ["sentences"], ["other language"], ["structural", "sentences", "other language"]):
        def x(r):
            return r["base"] + [r[e] for e in extra]
        w = logistic(np.array([x(r) for r in data["dev"]]),
                     np.array([{"stated": 1.0, "partly": 0.5}.get(r["label"], 0.0) for r in data["dev"]]))
        name = " + ".join(["base", *extra])
        out["verdicts"][name] = {}
        for s, rows in data.items():
            z = [(float(np.dot(w, x(r))), r["label"]) for r in rows]
            out["verdicts"][name][s] = round(auc([v for v, l in z if l == "stated"], [v for v, l in z if l in NEGATIVE]), 4)
        print(name, out["verdicts"][name], flush=True)
    for reading in data["dev"][0]["credit"]:
        out["alone"][reading] = {s: round(auc([r["credit"][reading] for r in rows if r["label"] == "stated"],
                                              [r["credit"][reading] for r in rows if r["label"] in NEGATIVE]), 4)
                                 for s, rows in data.items()}
        print(reading, out["alone"][reading], flush=True)
    write("judge_readings", out)


if __name__ == "__main__":
    main()
