"""Grading latency per model on the seed corpus, p50/p95, cold (no prefix cached) and warm (prefix
evaluated while the candidate was "typing", as `interview start` does).

    python bench/latency.py [--items 8]      # uses the configured backend (default: embedded model)

Answers graded: the first 60% of each item's reference answer (a realistic partial answer).
`grade_shown_s`: the grade without the model's reply (the judge and the text signals), which the
terminal shows at once where the score does not wait for the model (`Grader.scores_without_model`)."""
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
    cold, warm, prepare, tail, shown = [], [], [], [], []
    for item in items:
        q = Question.from_item(item)
        answer = item.answer[: max(40, int(len(item.answer) * 0.6))]
        t = time.monotonic()
        grader.quick(q, answer)
        shown.append(time.monotonic() - t)
        t = time.monotonic()
        grader.grade(q, answer)  # the previous item's prefix is cached, not this one's
        cold.append(time.monotonic() - t)
        t = time.monotonic()
        grader.prepare(q)  # what happens while the candidate types
        prepare.append(time.monotonic() - t)
        t = time.monotonic()
        g = grader.grade(q, answer + " ")  # same question, new text: the prefix is reused
        warm.append(time.monotonic() - t)
        tail.append(g.overall)
        print(f"{item.id}: shown {shown[-1]:.1f}s, cold {cold[-1]:.1f}s, prepare {prepare[-1]:.1f}s, warm {warm[-1]:.1f}s, "
              f"score {g.overall}", flush=True)
    write(f"latency-{llm.name}", {
        "model": llm.name, "backend": s.backend, "model_load_s": round(load_s, 2),
        "judge_load_s": round(judge_load_s, 2), "score_without_model": grader.scores_without_model,
        "grade_shown_s": summary(shown),
        "grade_cold_s": summary(cold), "prepare_prefix_s": summary(prepare),
        "grade_after_prepare_s": summary(warm), "items": [i.id for i in items],
    })


if __name__ == "__main__":
    main()
