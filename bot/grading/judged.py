"""Key-point statuses from the trained judge (`bot.judge`): ✔ stated, ◐ partly, ✘ missing,
✗ contradicted.

The judge reads each key point in the answer's language where the item has it (its numbers stay
the same), so the candidate also sees the points in their language. The cut-offs below turn its
calibrated probabilities into one status; they are part of the grading version.
"""
from __future__ import annotations

from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL

__all__ = ["CONTRADICTED", "COVERED", "MISSING", "PARTIAL", "CUTS", "points_for", "status"]

# ✗ only when the judge is this sure of a contradiction and finds it likelier than a statement. On
# real answers (our graded sets) it is almost never right: at 0.5, 2 of the 19 points it showed ✗
# (dev and test) were contradicted and 17 were stated or missing, e.g. "张量并行通信很频繁，所以一般
# 只在一台机器的 NVLink 内用" shown ✗ against the very point it states. A ✗ on what the candidate got
# right costs the grade its trust, so the cut-off sits where none of those 19 is shown (0.7); the
# model's fact check still lists wrong claims with corrections.
# The ✔ / ◐ / ✘ statuses come from the verdict model (bot/grading/verdicts.py), which reads the
# judge with the evidence; `status` is the judge's own reading, for bench/judge.py.
CUTS = {"contradicted": 0.7, "stated": 0.5, "partly": 0.25}


def points_for(key_points: list[str], translations: dict[str, list[str]], answer_language: str) -> list[str]:
    """The key points in the answer's language where the item has every one of them."""
    other = (translations or {}).get(answer_language) or []
    return list(other) if len(other) == len(key_points) and other else list(key_points)


def contradicted(v) -> bool:
    return v.contradicted >= CUTS["contradicted"] and v.contradicted > v.stated


def status(v) -> str:
    if contradicted(v):
        return CONTRADICTED
    if v.stated >= CUTS["stated"]:
        return COVERED
    if v.credit >= CUTS["partly"]:
        return PARTIAL
    return MISSING
