"""`--limit N`: a seeded sample that is representative of the whole split.

Real runs grade ~2-4 answers a minute, so quick runs must not be a skewed slice. The N rows are
shared out over the questions in proportion to their sizes (every question gets at least one when
N allows), then within each question over the human score bands (low / mid / high) in proportion,
by largest remainders. Ties and the rows drawn within a stratum come from random.Random(seed), so
the same seed gives the same sample (which is what lets an interrupted run resume).
The result is ordered question by question: the grader's prompt prefix is cached per question.
"""
from __future__ import annotations

import random
from collections.abc import Hashable
from typing import TypeVar

from bot.errors import UsageError
from bot.evaluation.metrics import band

K = TypeVar("K", bound=Hashable)


def allocate(sizes: dict[K, int], total: int, rng: random.Random, minimum: int = 0) -> dict[K, int]:
    """Split `total` over the groups in proportion to their sizes (largest remainder method),
    first giving each group `minimum` (capped at its size). Never more than a group holds."""
    total = min(total, sum(sizes.values()))
    quota = {k: min(minimum, n) for k, n in sizes.items()}
    rest = total - sum(quota.values())
    if rest < 0:
        raise ValueError("minimum exceeds total")
    room = {k: n - quota[k] for k, n in sizes.items()}
    cap = sum(room.values())
    if rest and cap:
        exact = {k: rest * room[k] / cap for k in sizes}
        for k in sizes:
            quota[k] += int(exact[k])
        left = total - sum(quota.values())
        order = sorted(sizes, key=lambda k: (exact[k] - int(exact[k]), rng.random()), reverse=True)
        for k in order[:left]:
            quota[k] += 1
    return quota


def group_by_question(rows: list) -> list:
    """Rows of the same question next to each other, questions in order of first appearance."""
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(r.question_id, i)
    return sorted(rows, key=lambda r: first[r.question_id])  # stable: file order within a question


def stratified_sample(rows: list, limit: int | None, seed: int, scale_max: float) -> list:
    if limit is None or limit >= len(rows):
        return group_by_question(rows)
    if limit < 1:
        raise UsageError(f"--limit is {limit}; ask for at least 1 row.")
    rng = random.Random(seed)
    by_q: dict[str, list] = {}
    for r in rows:
        by_q.setdefault(r.question_id, []).append(r)
    if limit >= len(by_q):
        per_q = allocate({q: len(rs) for q, rs in by_q.items()}, limit, rng, minimum=1)
    else:  # too few rows for every question: the seed picks which questions get one, not file order
        chosen = set(rng.sample(sorted(by_q), limit))
        per_q = {q: int(q in chosen) for q in by_q}
    picked: set[int] = set()
    for q, rs in by_q.items():
        strata: dict[str, list] = {}
        for r in rs:
            strata.setdefault(band(r.human, scale_max), []).append(r)
        for b, n in allocate({b: len(v) for b, v in strata.items()}, per_q[q], rng).items():
            picked.update(id(r) for r in rng.sample(strata[b], n))
    return group_by_question([r for r in rows if id(r) in picked])
