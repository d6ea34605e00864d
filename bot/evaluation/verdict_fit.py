"""Key-point verdicts against a person's labels: the training rows, the fit, and the metrics.

A person labelled every key point of every answer in bench/data/graded stated, partly, missing or
contradicted. `stated` is the positive class; `missing` and `contradicted` the negative one;
`partly` is left out of the fit (a person could not decide it either).
- false-missing: a stated point the grader marks missing (the feedback then asks for what the
  candidate said);
- false-covered: a missing or contradicted point the grader marks covered.
"""
from __future__ import annotations

import numpy as np

from bot.corpus import language_of
from bot.grading import judged, verdicts
from bot.judge.model import get_judge
from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL

POSITIVE, NEGATIVE = {"stated"}, {"missing", "contradicted"}
L2 = 1.0  # ridge on the coefficients (not the bias): a few hundred points, five features


def training_points(rows: list, records: list[dict]) -> list[tuple[dict[str, float], int]]:
    """(observations, 1 stated / 0 not) for every labelled key point of every graded answer that
    reached the model (answers a pre-check stopped have no verdicts to learn from)."""
    by_id = {r["row_id"]: r for r in records if r.get("status") == "ok"}
    out = []
    for row in rows:
        rec = by_id.get(row.id)
        if rec is None or not row.labels or rec["grade"].get("model") == "prechecks":
            continue
        stored = rec["grade"].get("key_points", [])
        flagged = {i for i, k in enumerate(stored) if k.get("model_status") == MISSING}
        # A behavioural item's verdicts never read the model's list (bot.grading.grader.assess)
        has_model = rec["grade"].get("model") not in ("none", "") and not row.structural
        kind = verdicts.kind_of(language_of(" ".join(row.key_points)), language_of(row.answer))
        translated = (row.translations or {}).get(language_of(row.answer))
        shown = judged.points_for(row.key_points, row.translations or {}, language_of(row.answer))
        verdicts_ = get_judge(row.structural).judge(shown, row.answer)
        for i, ev in enumerate(verdicts.gather(row.key_points, row.answer, kind, translated)):
            label = row.labels.get(i)
            if label in POSITIVE | NEGATIVE:
                out.append((verdicts.observations(ev, (i in flagged) if has_model else None, verdicts_[i]),
                            1 if label in POSITIVE else 0))
    return out


# What a behavioural item's verdict reads: the judge alone. Its key points describe a story's shape
# ("explains the root cause"), which no clause repeats in words, so the evidence's similarity and the
# point's terms say nothing about them (fitted on 116 dev points anyway, the terms weighed against a
# stated lesson whose words the story did not use).
STRUCTURAL_FEATURES = ("judge", "bias")


def fit(points: list[tuple[dict[str, float], int]], max_false_missing: float = 0.05,
        max_false_covered: float = 0.07, features: tuple[str, ...] | None = None) -> dict:
    """Logistic regression (Newton's method, L2 on the coefficients), then two cut-offs:
    `covered` is the lowest P(stated) that keeps false-covered at or under `max_false_covered`;
    `partial` the highest that keeps false-missing at or under `max_false_missing`. Points in
    between are "partly": the grader does not claim either way (the feedback asks to make them
    explicit rather than to add them)."""
    names = [k for k in verdicts.FEATURES if features is None or k in features]
    x = np.array([[o[k] for k in names] for o, _ in points], float)
    y = np.array([t for _, t in points], float)
    w = np.zeros(len(names))
    reg = np.full(len(names), L2)
    reg[names.index("bias")] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + reg * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
    pos, neg = p[y == 1], p[y == 0]
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    covered = next((float(c) for c in grid if (neg >= c).mean() <= max_false_covered), 0.99)
    partial = max((float(c) for c in grid if (pos < c).mean() <= max_false_missing), default=0.01)
    partial = min(partial, covered)
    return {"coef": {k: round(float(v), 4) for k, v in zip(names, w)}, "covered": covered, "partial": partial,
            "fitted_points": len(points),
            "in_sample": {"false_missing": round(float((pos < partial).mean()), 4),
                          "false_covered": round(float((neg >= covered).mean()), 4),
                          "stated_undecided": round(float(((pos >= partial) & (pos < covered)).mean()), 4),
                          "not_stated_undecided": round(float(((neg >= partial) & (neg < covered)).mean()), 4)}}


def metrics(rows: list, records: list[dict]) -> dict:
    """Per key point, from the grades as stored: false-missing and false-covered rates."""
    by_id = {r["row_id"]: r for r in records if r.get("status") == "ok"}
    stated = stated_missing = stated_partial = negative = negative_covered = negative_partial = 0
    contradicted = caught = others = others_contradicted = 0
    for row in rows:
        rec = by_id.get(row.id)
        if rec is None or not row.labels:
            continue
        kps = rec["grade"].get("key_points", [])
        for i, label in row.labels.items():
            if i >= len(kps):
                continue
            status = kps[i].get("status")
            if label in POSITIVE:
                stated += 1
                stated_missing += status in (MISSING, CONTRADICTED)
                stated_partial += status == PARTIAL
            elif label in NEGATIVE:
                negative += 1
                negative_covered += status == COVERED
                negative_partial += status == PARTIAL
            if label == "contradicted":
                contradicted += 1
                caught += status == CONTRADICTED
            else:
                others += 1
                others_contradicted += status == CONTRADICTED
    if not stated and not negative:
        return {}
    # false-missing: a stated point shown missing or contradicted (the feedback asks for it again)
    return {"stated": stated, "false_missing": round(stated_missing / stated, 4) if stated else None,
            "stated_marked_partial": round(stated_partial / stated, 4) if stated else None,
            "not_stated": negative, "false_covered": round(negative_covered / negative, 4) if negative else None,
            "not_stated_marked_partial": round(negative_partial / negative, 4) if negative else None,
            "contradicted": contradicted, "contradicted_caught": round(caught / contradicted, 4) if contradicted else None,
            "others_contradicted": round(others_contradicted / others, 4) if others else None}


def order_pairs(human: list[float], predicted: list[float], groups: list[str]) -> tuple[int, int]:
    """Within each question, pairs of answers people scored differently: how many the grader puts
    in the same order (a tie in the grade counts as wrong)."""
    right = total = 0
    for g in set(groups):
        idx = [i for i, q in enumerate(groups) if q == g]
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                i, j = idx[a], idx[b]
                if human[i] == human[j]:
                    continue
                total += 1
                right += (human[i] - human[j]) * (predicted[i] - predicted[j]) > 0
    return right, total
