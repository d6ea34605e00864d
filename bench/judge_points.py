"""The judge's point statements (bench/data/judge/points/) against a second, independent reader.

    python bench/judge_points.py --sample   # a random tenth of the statements, shuffled, without
                                            # what the writer meant: checks/points-sheet.jsonl
    python bench/judge_points.py            # compares checks/points-labels.jsonl (the reader's
                                            # labels: states / contradicts / neither) with the
                                            # writers' intent; writes bench/results/judge_points.json

A statement written to state its point ("same") should read as stating it; one written to reverse
it ("reversed") should read as contradicting it. Anything else is an error of the data.

The packs' aspects (`### Aspects`, what a follow-up asks about) are sampled the same way
(checks/aspects-sheet.jsonl); the reader says whether each names what its point is about
(`fits`) and whether it gives the point away (`gives_away`): checks/aspects-labels.jsonl.
"""
from __future__ import annotations

import json
import random
import sys
from collections import Counter

from common import ROOT, write

DATA = ROOT / "bench" / "data" / "judge"
SHEET = DATA / "checks" / "points-sheet.jsonl"
LABELS = DATA / "checks" / "points-labels.jsonl"
KEY = DATA / "checks" / "points-key.jsonl"  # what each sheet line was written as (not for the reader)
ASPECT_SHEET = DATA / "checks" / "aspects-sheet.jsonl"
ASPECT_LABELS = DATA / "checks" / "aspects-labels.jsonl"
INTENT = {"same": "states", "reversed": "contradicts"}


def statements() -> list[dict]:
    out = []
    for path in sorted((DATA / "points").glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                for kind in ("same", "reversed"):
                    for j, s in enumerate(r[kind]):
                        out.append({"file": path.name, "item": r["item"], "point": r["point"], "text": r["text"],
                                    "kind": kind, "which": j, "statement": s})
    return out


def sample() -> None:
    rows = statements()
    rng = random.Random(23)
    picked = rng.sample(rows, max(1, len(rows) // 10))
    with SHEET.open("w", encoding="utf-8") as sheet, KEY.open("w", encoding="utf-8") as key:
        for n, r in enumerate(picked, 1):
            sheet.write(json.dumps({"id": n, "item": r["item"], "key_point": r["text"], "statement": r["statement"]},
                                   ensure_ascii=False) + "\n")
            key.write(json.dumps({"id": n, **r}, ensure_ascii=False) + "\n")
    print(f"{len(picked)} of {len(rows)} statements in {SHEET}")
    aspects = [(it.id, i, lang, it.key_points[i] if lang == it.language else it.translations.get(lang, it.key_points)[i], a)
               for it in _items() for lang, got in sorted(it.aspects.items()) for i, a in enumerate(got)]
    picked = rng.sample(aspects, max(1, len(aspects) // 10))
    with ASPECT_SHEET.open("w", encoding="utf-8") as sheet:
        for n, (iid, i, lang, point, a) in enumerate(picked, 1):
            sheet.write(json.dumps({"id": n, "item": iid, "point": i + 1, "language": lang, "key_point": point,
                                    "aspect": a}, ensure_ascii=False) + "\n")
    print(f"{len(picked)} of {len(aspects)} aspects in {ASPECT_SHEET}")


def _items():
    from bot import config, corpus

    return corpus.load_items(corpus.corpus_files([config.DEFAULT_CORPUS_DIR]))


def compare() -> None:
    key = {r["id"]: r for r in map(json.loads, KEY.read_text("utf-8").splitlines()) if r}
    got = {r["id"]: r["label"] for r in map(json.loads, LABELS.read_text("utf-8").splitlines()) if r}
    pairs, wrong = Counter(), []
    for n, r in key.items():
        want, label = INTENT[r["kind"]], got.get(n)
        pairs[f"{want} -> {label}"] += 1
        if label != want:
            wrong.append({"id": n, "item": r["item"], "point": r["point"], "kind": r["kind"], "reader": label,
                          "statement": r["statement"]})
    aspects = {}
    if ASPECT_LABELS.exists():
        sheet = {r["id"]: r for r in map(json.loads, ASPECT_SHEET.read_text("utf-8").splitlines()) if r}
        labels = [json.loads(x) for x in ASPECT_LABELS.read_text("utf-8").splitlines() if x.strip()]
        bad = [{**sheet[r["id"]], **r} for r in labels if r.get("gives_away") or not r.get("fits")]
        aspects = {"checked": len(labels), "gives_away": sum(bool(r.get("gives_away")) for r in labels),
                   "does_not_fit": sum(not r.get("fits") for r in labels),
                   "error_rate": round(len(bad) / max(len(labels), 1), 4), "problems": bad}
    write("judge_points", {"statements": len(statements()), "checked": len(key),
                           "disagree": len(wrong), "error_rate": round(len(wrong) / max(len(key), 1), 4),
                           "writer -> reader": dict(pairs.most_common()), "disagreements": wrong,
                           "aspects": aspects})


if __name__ == "__main__":
    sample() if "--sample" in sys.argv else compare()
