"""JSON output of `interview score` (`--format json` / `--json`). The shape is stable: fields may be
added, none renamed or removed without a version bump of `schema`.

One transcript file -> one report object:

    {
      "schema": "interview-score/1",
      "source": "practice.vtt",            # the file (or the name given to score_text)
      "format": "vtt",                     # text | vtt | srt | otter | json
      "interviewer": "Sarah Chen",          # the speaker taken as the interviewer
      "speakers": ["Sarah Chen", "Tom"],
      "overall": 6.4,                      # mean 0-10 over every graded answer; null if none graded
      "overall_matched": 7.1,              # mean over answers to corpus questions only; null if none
      "questions": 5,                      # questions found (small talk excluded)
      "graded": 4, "unmatched": 1, "skipped": 0, "errors": 0,
      "small_talk_turns": 3,               # turns ignored as small talk
      "match_threshold": 0.4,              # match confidence (0-1) a question needs to count as a corpus question
      "elapsed_s": 12.3,
      "items": [
        {
          "n": 1,                          # position in the transcript
          "line": 13,                      # line of the question in the file (0 if unknown)
          "question": "How does dropout differ from batch normalization?",   # as asked
          "question_id": "dl-006",         # the matched corpus id; null when not in the corpus
          "corpus_question": "dropout和batch normalization有什么区别？",        # null when not matched
          "matched": true,                 # false: graded without a reference (generic key points)
          "match_score": 0.926,            # similarity to the best corpus item (0-1)
          "closest_id": null,              # when not matched: the closest corpus id, for reference
          "answer": "Dropout randomly zeroes ...",
          "status": "graded",              # graded | skipped (--skip-unmatched) | error
          "overall": 7.5,                  # 0-10, null unless graded
          "criteria": {"judgement": 8.0, "coverage": 7.1, "accuracy": 9.0},   # 0-10 each (see docs/commands.md)
          "key_points": [{"point": "...", "status": "covered", "evidence": "the candidate's words"}],
                                           # status: covered | partial | missing
          "wrong_claims": [{"claim": "the candidate's words", "correction": "..."}],
          "feedback": {"strengths": "...", "missing": ["key point", ...], "next_step": "...",
                       "reason": "only when a pre-check stopped grading", "warning": "only on injection"},
          "reference_answer": "...",       # the corpus answer; null when not matched
          "flags": [],                     # pre-check findings: empty, dont_know, gibberish, echo, off_topic, injection
          "model": "qwen2.5-coder-1.5b",   # the grader model ("prechecks" when no LLM call was needed)
          "error": null                    # why the item is not graded (status "error")
        }
      ]
    }

Several files (a folder, or more than one path) -> one batch object:

    {
      "schema": "interview-score-batch/1",
      "overall": 6.2,          # mean over every graded answer of every file; null if none
      "graded": 12,            # graded answers in all files
      "files": [ <report object>, ... ],                                  # files that could be scored
      "errors": [{"source": "bad.vtt", "error": "...", "hint": "...", "exit_code": 2}]   # files that could not
    }
"""
from __future__ import annotations

import json

SCHEMA, BATCH_SCHEMA = "interview-score/1", "interview-score-batch/1"


def report_dict(report) -> dict:
    return {"schema": SCHEMA, **report.to_dict()}


def batch_dict(reports: list, errors: list[dict]) -> dict:
    scores = [i.overall for r in reports for i in r.items if i.overall is not None]
    return {
        "schema": BATCH_SCHEMA,
        "overall": round(sum(scores) / len(scores), 1) if scores else None,
        "graded": len(scores),
        "files": [report_dict(r) for r in reports],
        "errors": list(errors),
    }


def render_json(report) -> str:
    return json.dumps(report_dict(report), ensure_ascii=False, indent=2)


def render_json_batch(reports: list, errors: list[dict]) -> str:
    return json.dumps(batch_dict(reports, errors), ensure_ascii=False, indent=2)
