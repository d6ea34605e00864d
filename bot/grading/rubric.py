"""The rubric: how the findings become a 0-10 score. Weights live here and nowhere else.

    coverage  = mean key-point credit (covered 1, partial 0.5, missing 0), after the evidence check
    accuracy  = 1 - 1/3 per verified wrong claim (floor 0)
    depth, clarity = the model's 0-4 judgements / 4
    gate      = min(1, 2 * coverage): accuracy, depth and clarity only earn credit for an answer
                with substance, so fluent text that covers nothing cannot score on style
    overall   = 10 * (W_cov*coverage + gate*(W_acc*accuracy + W_depth*depth + W_clar*clarity))

The model never sets the overall score: it reports evidence and judgements; this code adds them up.
"""
from __future__ import annotations

from bot.grading.result import COVERED, PARTIAL, Criterion, KeyPointResult, WrongClaim

WEIGHTS = {"coverage": 0.55, "accuracy": 0.20, "depth": 0.15, "clarity": 0.10}
CREDIT = {COVERED: 1.0, PARTIAL: 0.5}
WRONG_CLAIM_PENALTY = 1 / 3


def coverage(points: list[KeyPointResult]) -> float:
    return sum(CREDIT.get(p.status, 0.0) for p in points) / len(points) if points else 0.0


def score(points: list[KeyPointResult], wrong: list[WrongClaim], depth: int, clarity: int
          ) -> tuple[float, list[Criterion]]:
    cov = coverage(points)
    acc = max(0.0, 1.0 - WRONG_CLAIM_PENALTY * len(wrong))
    dep, cla = depth / 4, clarity / 4
    gate = min(1.0, 2 * cov)
    total = 10 * (WEIGHTS["coverage"] * cov
                  + gate * (WEIGHTS["accuracy"] * acc + WEIGHTS["depth"] * dep + WEIGHTS["clarity"] * cla))
    n_cov = sum(p.status == COVERED for p in points)
    n_par = sum(p.status == PARTIAL for p in points)
    criteria = [
        Criterion("coverage", round(10 * cov, 1), WEIGHTS["coverage"],
                  f"{n_cov} of {len(points)} key points covered, {n_par} partly"),
        Criterion("accuracy", round(10 * acc * gate, 1), WEIGHTS["accuracy"],
                  f"{len(wrong)} wrong claim(s)" if wrong else "no wrong claims"),
        Criterion("depth", round(10 * dep * gate, 1), WEIGHTS["depth"], f"model judged {depth}/4"),
        Criterion("clarity", round(10 * cla * gate, 1), WEIGHTS["clarity"], f"model judged {clarity}/4"),
    ]
    return round(min(10.0, max(0.0, total)), 1), criteria
