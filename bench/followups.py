"""Benchmark: follow-up questions with the embedded model (issue #11).

    python bench/followups.py [--items 5]

Takes the hand-graded answers (bench/data/graded) to the `--items` corpus questions with the most
partial answers: a person marked at least one key point stated, and one of the three most important
missing or only partly stated. Each is graded by the embedded model, then the follow-up is written
as `interview start` writes it (bot/followups.py, through the service's grader). Reports:
- how often the follow-up targets a key point the person did NOT mark stated (missing, partly or
  contradicted): the point it asks about is really a gap;
- how often the model wrote it (vs the template, used when the model's question gave the point
  away or failed);
- the time from the grade to the follow-up (what the candidate waits, reading the grade), with the
  follow-up prompt's prefix warmed while the candidate typed, as the service does.
Run it alone: the model needs both cores. Writes bench/results/followups.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import followups  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.corpus import language_of, load_items  # noqa: E402
from bot.grading.grader import Grader  # noqa: E402
from bot.grading.question import Question  # noqa: E402
from bot.llm import get_llm  # noqa: E402


def partial(row: dict) -> bool:
    labels = row["key_points"]
    top = [labels.get(str(i + 1)) for i in range(3)]
    return any(v == "stated" for v in labels.values()) and any(v in ("missing", "partly") for v in top)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=5)
    args = ap.parse_args()
    rows = [json.loads(line) for f in sorted((ROOT / "bench/data/graded").glob("*.jsonl"))
            for line in f.read_text("utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if partial(r)]
    chosen = [q for q, _ in Counter(r["question_id"] for r in rows).most_common(args.items)]
    rows = [r for r in rows if r["question_id"] in chosen]
    items = {i.id: i for i in load_items([ROOT / "corpus/deep-learning-zh.md"])}
    llm = get_llm(load_settings())
    grader = Grader(llm)
    out = []
    for r in rows:
        q = Question.from_item(items[r["question_id"]])
        grader.prepare(q)  # what the service warms while the candidate types: grading prefixes,
        llm.prepare(*followups.prefix(q))  # then the follow-up's
        grade = grader.grade(q, r["answer"])
        t = time.monotonic()
        f = followups.write(q, grade, llm, language_of(r["answer"]))
        took = time.monotonic() - t
        if f is None:
            out.append({"id": r["id"], "follow_up": None, "overall": grade.overall, "human": r["score"]})
            print(f"{r['id']}: no follow-up (grade {grade.overall})", file=sys.stderr)
            continue
        label = r["key_points"].get(str(f.points[0] + 1))
        out.append({"id": r["id"], "language": language_of(r["answer"]), "human": r["score"], "overall": grade.overall,
                    "target": f.points[0], "point": q.key_points[f.points[0]], "person_label": label,
                    "is_gap": label != "stated", "by": f.by, "question": f.question, "seconds": round(took, 2)})
        print(f"{r['id']}: -> point {f.points[0] + 1} ({label}), {f.by}, {took:.1f} s: {f.question}", file=sys.stderr)
    asked = [o for o in out if o.get("follow_up", True) is not None and "target" in o]
    secs = sorted(o["seconds"] for o in asked)
    summary = {
        "model": llm.name, "items": chosen, "partial_answers": len(out), "follow_ups": len(asked),
        "targets_a_gap": sum(o["is_gap"] for o in asked), "targets_a_gap_share": round(
            sum(o["is_gap"] for o in asked) / len(asked), 3) if asked else None,
        "written_by_model": sum(o["by"] == "model" for o in asked),
        "seconds_p50": round(statistics.median(secs), 2) if secs else None,
        "seconds_max": secs[-1] if secs else None,
        "within_2s": sum(s <= 2.0 for s in secs),
        "rows": out,
    }
    dest = ROOT / "bench/results/followups.json"
    dest.write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, ensure_ascii=False, indent=1))
    print(f"wrote {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
