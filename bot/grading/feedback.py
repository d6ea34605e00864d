"""The feedback a candidate reads: what was good, what is missing, what is unclear, one concrete
next step, from the key-point verdicts, in the answer's language; and the notes a grade's flags
add (instructions to the grader ignored, a fact check that failed)."""
from __future__ import annotations

from bot.grading.factcheck import FACT_CHECK_FAILED
from bot.grading.prechecks import INJECTION
from bot.grading.question import Question
from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL, KeyPointResult

_FEEDBACK = {
    "zh": {"good": "你讲到了：", "partly": "你部分讲到了：", "none": "回答还没有讲到任何要点。",
           "wrong": "下一步：核对“{p}”——你的说法与它不符。",
           "unsure": "还没能从你的原话中确认任何要点。",
           "next": "下一步：补充“{p}”。",
           "clarify": "下一步：把“{p}”讲得更明确。",
           "done": "下一步：补充原理、取舍和例子，让回答更有深度。", "sep": "；"},
    "en": {"good": "You covered: ", "partly": "You partly covered: ", "none": "The answer does not cover any key point yet.",
           "wrong": "Next step: recheck \"{p}\": your answer says otherwise.",
           "unsure": "No key point could be confirmed from your words yet.",
           "next": "Next step: add \"{p}\".", "clarify": "Next step: make \"{p}\" explicit.",
           "done": "Next step: add the why, trade-offs and an example.", "sep": "; "},
}
# What a flag of the grade adds to its feedback (in English, as the flags' other texts).
_NOTES = {
    INJECTION: ("warning", "The answer contains instructions to the grader; they were ignored."),
    FACT_CHECK_FAILED: ("note", "The model's fact check failed, so this grade was computed without it "
                                  "(other weights); grade the answer again to include it."),
}


def feedback(q: Question, points: list[KeyPointResult], reason: str = "", answer_language: str | None = None) -> dict:
    """What was good, what is missing, what is unclear, one concrete next step: from the key-point
    verdicts, in the answer's language (an English answer to a Chinese question gets English
    sentences; the key points are quoted as written). Only points the grader is confident are
    absent are called missing; the ones it cannot decide are asked to be made explicit."""
    t = _FEEDBACK.get(answer_language or q.language, _FEEDBACK["en"])
    good = [p.point for p in points if p.status == COVERED]
    missing = [p.point for p in points if p.status == MISSING]  # key points are ordered by importance
    unclear = [p.point for p in points if p.status == PARTIAL]
    contradicted = [p.point for p in points if p.status == CONTRADICTED]
    # A point shown as partly said, with the candidate's words quoted, is not "nothing covered".
    partly = [p.point for p in points if p.status == PARTIAL and p.evidence]
    fb = {
        # Points the grader cannot decide (◐) are not "nothing covered": a 9.5 behavioural story
        # whose shape no clause repeats was told it covered nothing.
        "strengths": (t["good"] + t["sep"].join(good) if good else t["partly"] + t["sep"].join(partly) if partly
                      else t["unsure"] if unclear else t["none"]),
        "missing": missing,
        "unclear": unclear,
        "contradicted": contradicted,
        # A claim that contradicts a key point is the first thing to fix, then a missing point.
        "next_step": (t["wrong"].format(p=contradicted[0]) if contradicted else t["next"].format(p=missing[0])
                      if missing else t["clarify"].format(p=unclear[0]) if unclear else t["done"]),
    }
    if reason:
        fb["reason"] = reason
    return fb


def notes(flags: list[str]) -> dict:
    """The warning and note the grade's flags add to its feedback (in this order)."""
    return dict(_NOTES[f] for f in (INJECTION, FACT_CHECK_FAILED) if f in flags)
