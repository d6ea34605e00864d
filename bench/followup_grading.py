"""Benchmark: grading the answer to a follow-up question with the embedded model.

    python bench/followup_grading.py [--full-reference]

bench/data/followup_answers.jsonl: 8 follow-ups on one key point each (zh and en; deep learning,
ML fundamentals, algorithms), each answered once correctly in two lines and once wrongly (the
point reversed, or dodged). Each answer is graded as `interview start` grades a follow-up's
answer (bot.followups.sub_question: the targeted point is the key point and the reference).
`--full-reference` grades against the item's whole reference instead (before 2026-12-03), for
comparison. Reports the mean grade of correct and wrong answers, how many correct answers beat
their wrong twin, and the bands (correct >= 7, wrong <= 3.5). Run it alone: the model needs both
cores. Writes bench/results/followup_grading[-full-reference].json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot import followups  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.corpus import load_items  # noqa: E402
from bot.grading.grader import Grader  # noqa: E402
from bot.grading.question import Question  # noqa: E402
from bot.llm import get_llm  # noqa: E402

DATA = ROOT / "bench/data/followup_answers.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full-reference", action="store_true", help="grade against the whole reference (the old way)")
    args = ap.parse_args()
    settings = load_settings()
    items = {i.id: i for i in load_items(settings.corpus_paths)}
    grader = Grader(get_llm(settings))
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    graded = []
    for r in rows:
        q = Question.from_item(items[r["item"]])
        sub = followups.sub_question(q, followups.FollowUp(r["follow_up"], [r["point"]], "model"))
        if args.full_reference:
            sub = replace(sub, reference=q.reference)
        start = time.monotonic()
        g = grader.grade(sub, r["answer"])
        graded.append({**r, "overall": g.overall, "status": g.key_points[0].status if g.key_points else "",
                       "seconds": round(time.monotonic() - start, 1)})
        print(f"{r['item']:12} {r['quality']:8} {g.overall:4.1f}  {r['answer'][:60]}", file=sys.stderr)
    good = [g["overall"] for g in graded if g["quality"] == "correct"]
    bad = [g["overall"] for g in graded if g["quality"] == "wrong"]
    result = {
        "command": "python bench/followup_grading.py" + (" --full-reference" if args.full_reference else ""),
        "model": grader.llm.name, "date": time.strftime("%Y-%m-%d"),
        "reference": "the item's whole reference" if args.full_reference else "the targeted key point",
        "pairs": len(good),
        "correct_mean": round(statistics.mean(good), 2), "wrong_mean": round(statistics.mean(bad), 2),
        "correct_above_wrong": sum(a > b for a, b in zip(good, bad)),
        "correct_at_least_7": sum(a >= 7 for a in good), "wrong_at_most_3_5": sum(b <= 3.5 for b in bad),
        "seconds_p50": statistics.median(g["seconds"] for g in graded),
        "answers": graded,
    }
    out = ROOT / "bench/results" / ("followup_grading" + ("-full-reference" if args.full_reference else "") + ".json")
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "answers"}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
