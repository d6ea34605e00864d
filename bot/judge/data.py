"""The judge's training data: answers written for the packs' items, each key point labelled
stated / partly / missing / contradicted (bench/data/judge/answers/*.jsonl, format in its README).

Items that our graded test split or the behavioural test split ask (and their declared twins)
are never trained on: `HELD_OUT`. A tenth of the other items is kept apart to watch training and
to calibrate the judge's probabilities (`VALIDATION`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from bot.errors import UsageError
from bot.judge.packing import LABELS

# The graded test split is the even-numbered seed items (bot.evaluation.datasets.corpus_split), the
# behavioural test split its even-numbered items; mlf-en-017 and the behavioural twins ask the same
# questions in another pack.
HELD_OUT = frozenset({
    "dl-002", "dl-004", "dl-006", "dl-008", "dl-010", "dl-012", "dl-014", "dl-016", "dl-018", "dl-020",
    "mlf-en-017", "beh-en-002", "beh-en-004", "beh-en-005", "beh-en-006", "beh-en-007",
    "beh-zh-007", "beh-zh-008", "beh-zh-010",
})


def is_validation(item_id: str) -> bool:
    return int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % 10 == 0


@dataclass
class Example:
    item: str
    answer: str
    points: list[str]
    labels: list[int]  # index into LABELS
    kind: str
    lang: str


def _records(paths: list[Path], items: dict, problems: list[str], key: str = "item"):
    """(`file:line`, the line's object, its item) for each JSON line naming a known item (under
    `key`); the rest are added to `problems`."""
    for path in paths:
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{n}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: not JSON ({e.msg})")
                continue
            item = items.get(r.get(key))
            if item is None:
                problems.append(f"{where}: unknown item {r.get(key)!r}")
                continue
            yield where, r, item


def load_answers(paths: list[Path], items: dict) -> list[dict]:
    """Every labelled answer, checked against the packs; a problem is a `file:line: what` error."""
    rows, problems = [], []
    for where, r, item in _records(paths, items, problems):
        labels = r.get("labels") or {}
        want = {str(i) for i in range(1, len(item.key_points) + 1)}
        if set(labels) != want:
            problems.append(f"{where}: labels for points {sorted(labels, key=int)} but {item.id} has "
                            f"{len(item.key_points)}")
            continue
        if bad := sorted({v for v in labels.values() if v not in LABELS}):
            problems.append(f"{where}: unknown labels {bad}")
            continue
        if not str(r.get("answer", "")).strip():
            problems.append(f"{where}: empty answer")
            continue
        r["_where"] = where
        rows.append(r)
    if problems:
        raise UsageError("The judge's training data has problems:\n  " + "\n  ".join(problems[:20]),
                         "Fix the lines shown (bench/data/judge/README.md gives the format).")
    return rows


def versions(item) -> list[list[str]]:
    """The item's key points in its own language, then in each language it has every one of them
    in (numbered the same, so one answer's labels serve each)."""
    return [item.key_points] + [p for p in item.translations.values() if len(p) == len(item.key_points)]


def examples(rows: list[dict], items: dict) -> list[Example]:
    """One example per answer and language of its key points: the item's own, and each language
    the item has them in (the labels are the same point by point)."""
    out = []
    for r in rows:
        item = items[r["item"]]
        labels = [LABELS.index(r["labels"][str(i)]) for i in range(1, len(item.key_points) + 1)]
        for pts in versions(item):
            out.append(Example(item.id, r["answer"], list(pts), labels, r.get("kind", ""), r.get("lang", "")))
    return out


def graded(paths: list[Path], items: dict, repeat: int, fold: int | None = None) -> list[Example]:
    """Our graded answers (bench/data/graded*/: real answers, every key point labelled by people)
    as examples, each `repeat` times: the written answers are one set of writers' style, these are
    the closest we have to candidates'. Only items outside `HELD_OUT`, which holds every item of
    the graded test splits: the dev split. `fold` 0 or 1 keeps half of those items (by a hash of
    the id), so the other half can measure the change."""
    out, problems = [], []
    for where, r, item in _records(paths, items, problems, key="question_id"):
        labels = r.get("key_points") or {}
        answer = str(r.get("answer") or "").strip()
        if not answer:
            problems.append(f"{where}: empty answer")
            continue
        if item.id in HELD_OUT or set(labels) != {str(i) for i in range(1, len(item.key_points) + 1)}:
            continue
        if fold is not None and int(hashlib.sha256(item.id.encode()).hexdigest(), 16) % 2 != fold:
            continue
        ids = [LABELS.index(labels[str(i)]) for i in range(1, len(item.key_points) + 1)]
        for pts in versions(item):
            out += [Example(item.id, answer, list(pts), ids, "graded", "")] * repeat
    if problems:
        raise UsageError("The graded answers have problems:\n  " + "\n  ".join(problems[:20]),
                         "Fix the lines shown (bench/data/graded/*.jsonl).")
    return out


# Statements per key point (bench/data/judge/points/*.jsonl): two that state it, two that
# contradict it. Composed into short answers they teach what the written answers alone could not:
# the same words saying the opposite. A candidate who misremembers every point sounds as fluent as
# one who knows them, and people give such an answer nothing.
RECIPES = (  # (P(stated), P(reversed)); the rest of the points are left out
    ("all-wrong", 0.0, 0.8),
    ("slips", 0.65, 0.2),
    ("partial", 0.45, 0.1),
    ("mixed", 0.35, 0.35),
)


def load_points(paths: list[Path], items: dict) -> dict[str, list[dict]]:
    """item id -> one row per key point, in order; checked against the packs."""
    by_item: dict[str, dict[int, dict]] = {}
    problems: list[str] = []
    for where, r, item in _records(paths, items, problems):
        k = r.get("point")
        if not isinstance(k, int) or not 1 <= k <= len(item.key_points):
            problems.append(f"{where}: point {k!r} is not one of {item.id}'s 1..{len(item.key_points)}")
            continue
        good = all(isinstance(r.get(f), list) and len(r[f]) == 2 and all(isinstance(s, str) and s.strip()
                                                                         for s in r[f])
                   for f in ("same", "reversed"))
        if not good:
            problems.append(f"{where}: `same` and `reversed` must each be two non-empty statements")
            continue
        by_item.setdefault(item.id, {})[k] = r
    for iid, rows in by_item.items():
        if len(rows) != len(items[iid].key_points):
            problems.append(f"{iid}: statements for points {sorted(rows)} of {len(items[iid].key_points)}")
    if problems:
        raise UsageError("The judge's point statements have problems:\n  " + "\n  ".join(problems[:20]),
                         "Fix the lines shown (bench/data/judge/README.md gives the format).")
    return {iid: [rows[k] for k in sorted(rows)] for iid, rows in by_item.items()}


def composed(points: dict[str, list[dict]], items: dict, per_item: int, seed: int) -> list[Example]:
    """`per_item` short answers per item, each made of some points' statements (stated or
    reversed) in the item's language, the other one or both; labelled point by point. Each
    answer is paired with one language of the key points, chosen at random (seeded)."""
    import random

    rng = random.Random(seed)
    out = []
    for iid in sorted(points):
        item, rows = items[iid], points[iid]
        languages = versions(item)
        for k in range(per_item):
            kind, p_st, p_rev = RECIPES[k % len(RECIPES)]
            style = rng.choice(("own", "own", "other", "mixed"))
            parts, labels = [], []
            for r in rows:
                u = rng.random()
                which = 0 if style == "own" else 1 if style == "other" else rng.randrange(2)
                if u < p_st:
                    parts.append(r["same"][which])
                    labels.append("stated")
                elif u < p_st + p_rev:
                    parts.append(r["reversed"][which])
                    labels.append("contradicted")
                else:
                    labels.append("missing")
            if kind == "all-wrong" and labels.count("contradicted") < min(2, len(rows)):
                for i in rng.sample(range(len(rows)), min(2, len(rows))):
                    if labels[i] != "contradicted":
                        labels[i] = "contradicted"
                        parts.append(rows[i]["reversed"][0 if style == "own" else 1])
            if not parts:
                i = rng.randrange(len(rows))
                parts.append(rows[i]["same"][0])
                labels[i] = "stated"
            if rng.random() < 0.5:
                rng.shuffle(parts)
            joiner = "" if item.language == "zh" and style == "own" else " "
            answer = joiner.join(s.strip() for s in parts)
            out.append(Example(iid, answer, list(rng.choice(languages)), [LABELS.index(x) for x in labels],
                               f"composed-{kind}", style))
    return out
