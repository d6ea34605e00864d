"""The judge's training data against a second, independent reader: a random tenth of each file's
answers (bench/data/judge/checks/, labelled blind, without the writer's labels).

    python bench/judge_data.py       # writes bench/results/judge_data.json

- disagreement: key points the two readers labelled differently;
- serious: one says stated where the other says missing or contradicted (or the reverse), or one
  says contradicted where the other says stated or partly.
"""
from __future__ import annotations

import json
from collections import Counter

from common import ROOT, write

DATA = ROOT / "bench" / "data" / "judge"
SERIOUS = {frozenset(p) for p in (("stated", "missing"), ("stated", "contradicted"), ("partly", "contradicted"))}


def main() -> None:
    per_file, pairs = {}, Counter()
    for check in sorted((DATA / "checks").glob("*.jsonl")):
        lines = (DATA / "answers" / check.name).read_text("utf-8").splitlines()
        n = differ = serious = 0
        for raw in check.read_text("utf-8").splitlines():
            if not raw.strip():
                continue
            c = json.loads(raw)
            w = json.loads(lines[c["line"] - 1])
            assert w["item"] == c["item"], (check.name, c["line"])
            for k, label in w["labels"].items():
                other = c["labels"].get(k)
                n += 1
                if other != label:
                    differ += 1
                    pairs[f"{label} -> {other}"] += 1
                    serious += frozenset((label, other)) in SERIOUS
        per_file[check.stem] = {"labels": n, "disagree": differ, "serious": serious}
    total = {k: sum(f[k] for f in per_file.values()) for k in ("labels", "disagree", "serious")}
    write("judge_data", {"files": per_file, **total,
                         "disagreement_rate": round(total["disagree"] / max(total["labels"], 1), 4),
                         "serious_rate": round(total["serious"] / max(total["labels"], 1), 4),
                         "writer -> checker": dict(pairs.most_common())})


if __name__ == "__main__":
    main()
