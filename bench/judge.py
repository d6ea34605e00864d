"""The key-point judge against people's labels, point by point: our graded answers (dev and test)
and the behavioural set, by the verdicts the grader shows (bot.grading.judged).

    python bench/judge.py            # writes bench/results/judge.json
    python bench/judge.py --fit      # the cut-offs (bot/grading/judged.py CUTS) that meet the
                                     # targets on the dev split, most stated points shown ✔

- auc_stated: P(stated) + P(partly)/2 ranks stated points above missing and contradicted ones;
- stated_shown_partly: stated points shown ◐; false_missing: stated points shown ✘ or ✗;
- false_covered: missing or contradicted points shown ✔;
- contradicted_caught: contradicted points shown ✗; others_contradicted: the rest shown ✗.
"""
from __future__ import annotations

import time

from common import write

from bot.corpus import language_of
from bot.evaluation import datasets
from bot.grading import judged
from bot.judge.model import get_judge


def auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def verdicts_of(ds) -> list[tuple[object, str]]:
    out = []
    for row in ds.rows:
        if row.labels:
            points = judged.points_for(row.key_points, row.translations or {}, language_of(row.answer))
            for i, v in enumerate(get_judge(row.structural).judge(points, row.answer)):
                if row.labels.get(i):
                    out.append((v, row.labels[i]))
    return out


def fit(pairs, max_false_missing=0.05, max_false_covered=0.08, max_others_contradicted=0.05) -> dict:
    """Grid search over the three cut-offs: within the limits, the fewest stated points shown ◐,
    then the most contradicted points caught."""
    best = None
    for c in [x / 20 for x in range(6, 17)]:
        for st in [x / 20 for x in range(4, 17)]:
            for pa in [x / 20 for x in range(1, 9)]:
                judged.CUTS.update(contradicted=c, stated=st, partly=pa)
                n = rates(pairs)
                if (n["false_missing"] > max_false_missing or n["false_covered"] > max_false_covered
                        or n["others_contradicted"] > max_others_contradicted):
                    continue
                key = (-n["stated_shown_partly"], n["contradicted_caught"])
                if best is None or key > best[0]:
                    best = (key, {"contradicted": c, "stated": st, "partly": pa}, n)
    return {"cuts": best[1], "dev": best[2]} if best else {}


def rates(pairs) -> dict:
    st = [judged.status(v) for v, _ in pairs]
    lab = [l for _, l in pairs]

    def share(num, den):
        d = sum(den)
        return sum(a and b for a, b in zip(num, den)) / d if d else 0.0

    is_stated = [l == "stated" for l in lab]
    is_neg = [l in ("missing", "contradicted") for l in lab]
    is_con = [l == "contradicted" for l in lab]
    return {"stated_shown_partly": round(share([s == judged.PARTIAL for s in st], is_stated), 4),
            "false_missing": round(share([s in (judged.MISSING, judged.CONTRADICTED) for s in st], is_stated), 4),
            "false_covered": round(share([s == judged.COVERED for s in st], is_neg), 4),
            "contradicted_caught": round(share([s == judged.CONTRADICTED for s in st], is_con), 4),
            "others_contradicted": round(share([s == judged.CONTRADICTED for s in st], [not c for c in is_con]), 4)}


def measure(ds) -> dict:
    """Each row read by the judge grading uses for it (behavioural items: their own)."""
    pos, neg = [], []
    n = {"stated": 0, "stated_partly": 0, "stated_missing": 0, "negative": 0, "negative_covered": 0,
         "contradicted": 0, "contradicted_caught": 0, "others": 0, "others_contradicted": 0}
    times = []
    for row in ds.rows:
        if not row.labels:
            continue
        points = judged.points_for(row.key_points, row.translations or {}, language_of(row.answer))
        t0 = time.perf_counter()
        verdicts = get_judge(row.structural).judge(points, row.answer)
        times.append(time.perf_counter() - t0)
        for i, v in enumerate(verdicts):
            label = row.labels.get(i)
            if label is None:
                continue
            status = judged.status(v)
            if label == "stated":
                pos.append(v.credit)
                n["stated"] += 1
                n["stated_partly"] += status == judged.PARTIAL
                n["stated_missing"] += status in (judged.MISSING, judged.CONTRADICTED)
            elif label in ("missing", "contradicted"):
                neg.append(v.credit)
                n["negative"] += 1
                n["negative_covered"] += status == judged.COVERED
            if label == "contradicted":
                n["contradicted"] += 1
                n["contradicted_caught"] += status == judged.CONTRADICTED
            else:
                n["others"] += 1
                n["others_contradicted"] += status == judged.CONTRADICTED

    def rate(a, b):
        return round(n[a] / n[b], 4) if n[b] else None

    return {"answers": len(times), "points": n["stated"] + n["negative"], "auc_stated": round(auc(pos, neg), 4),
            "stated_shown_partly": rate("stated_partly", "stated"), "false_missing": rate("stated_missing", "stated"),
            "false_covered": rate("negative_covered", "negative"),
            "contradicted_caught": rate("contradicted_caught", "contradicted"),
            "others_contradicted": rate("others_contradicted", "others"), "counts": n,
            "seconds_per_answer_p50": round(sorted(times)[len(times) // 2], 3) if times else None}


def main() -> None:
    import sys

    if "--fit" in sys.argv:
        print(fit(verdicts_of(datasets.load_graded("dev"))))
        return
    out = {"judge": get_judge().version, "structural_judge": get_judge(True).version, "cuts": dict(judged.CUTS)}
    for name, loader in (("corpus", datasets.load_graded), ("behavioural", datasets.load_behavioural)):
        for split in ("dev", "test"):
            out[f"{name}-{split}"] = measure(loader(split))
    write("judge", out)


if __name__ == "__main__":
    main()
