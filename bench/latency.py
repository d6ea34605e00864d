"""Grading latency per model on the seed corpus, p50/p95, cold (no prefix cached) and warm (prefix
evaluated while the candidate was "typing", as `interview start` does).

    python bench/latency.py [--items 8]      # uses the configured backend (default: embedded model)

Answers graded: the first 60% of each item's reference answer (a realistic partial answer).
`*_shown_s`: submit -> the grade a face shows before the model's reply (its score and key points,
after the fact check: `bot.grading.grader.score_settled`); the rest is the reply (its corrections)."""
from __future__ import annotations

import argparse
import time

from common import summary, write

from bot.config import load_settings
from bot.corpus import load_items
from bot.grading.grader import Grader
from bot.grading.question import Question
from bot.llm import get_llm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=8)
    args = ap.parse_args()
    s = load_settings()
    t = time.monotonic()
    llm = get_llm(s)
    load_s = time.monotonic() - t
    grader = Grader(llm)
    t = time.monotonic()
    from bot.judge.model import get_judge
    get_judge()
    judge_load_s = time.monotonic() - t
    items = load_items(s.corpus_paths)[: args.items]
    cold, warm, prepare, cold_shown, warm_shown = [], [], [], [], []

    def timed(q, answer, shown: list):
        t = time.monotonic()
        seen = []
        g = grader.grade(q, answer, early=lambda _: seen.append(time.monotonic() - t))
        shown.append(seen[0] if seen else time.monotonic() - t)
        return g, time.monotonic() - t

    for item in items:
        q = Question.from_item(item)
        answer = item.answer[: max(40, int(len(item.answer) * 0.6))]
        _, took = timed(q, answer, cold_shown)  # the previous item's prefixes are cached, not this one's
        cold.append(took)
        t = time.monotonic()
        grader.prepare(q)  # what happens while the candidate types
        prepare.append(time.monotonic() - t)
        g, took = timed(q, answer + " ", warm_shown)  # same question, new text: the prefixes are reused
        warm.append(took)
        print(f"{item.id}: cold shown {cold_shown[-1]:.1f}s / graded {cold[-1]:.1f}s, prepare {prepare[-1]:.1f}s, "
              f"warm shown {warm_shown[-1]:.1f}s / graded {warm[-1]:.1f}s, score {g.overall}", flush=True)
    write(f"latency-{llm.name}", {
        "model": llm.name, "backend": s.backend, "model_load_s": round(load_s, 2),
        "judge_load_s": round(judge_load_s, 2),
        "cold_shown_s": summary(cold_shown), "grade_cold_s": summary(cold), "prepare_prefix_s": summary(prepare),
        "warm_shown_s": summary(warm_shown), "grade_after_prepare_s": summary(warm), "items": [i.id for i in items],
    })


if __name__ == "__main__":
    main()
