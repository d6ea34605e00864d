"""Score a practice transcript: read -> pair -> match each question to the corpus -> grade each answer.

    report = service.score_transcript(text, "practice.vtt", index=index)  # bot.service, every face's door
    report = score_text(text, "practice.vtt", index=index, corpus=..., save=..., grade=...)  # what it calls

Matching is bot.matching.QuestionMatcher. A question whose best score is below the threshold is
"not in corpus": graded without a reference (marked `matched: false`) or, with skip_unmatched, skipped.

Each answer is saved (source "transcript") before any is graded, and the service's grading serves a
re-scored file from its content cache instead of calling the LLM again.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable


from bot.corpus import language_of
from bot.errors import ContextOverflowError, InterviewError, LLMError, ModelError
from bot.grading.question import Question
from bot.grading.result import COVERED, Grade
from bot.transcripts import TranscriptError
from bot.transcripts.pairing import pair_transcript
from bot.transcripts.readers import read_turns
from bot.matching import QuestionMatcher

NO_REFERENCE = "(no reference: judge from expert knowledge)"
GENERIC_KEY_POINTS = [
    "The answer addresses the question directly",
    "The answer is technically correct",
    "The answer explains why or how, not only what",
]
@dataclass
class ScoredItem:
    n: int
    question: str
    line: int
    answer: str
    answer_line: int | None
    matched: bool
    question_id: str | None  # the corpus id when matched, else None
    corpus_question: str | None  # the matched corpus question (or the closest one, when unmatched)
    match_score: float
    status: str = "pending"  # graded | skipped (not in corpus, --skip-unmatched) | error
    grade: Grade | None = None
    error: str | None = None
    closest_id: str | None = None

    @property
    def overall(self) -> float | None:
        return self.grade.overall if self.grade and self.status == "graded" else None

    @property
    def top_missing(self) -> str:
        if not self.grade:
            return ""
        missing = [k.point for k in self.grade.key_points if k.status != COVERED]
        return missing[0] if missing else ""

    def to_dict(self) -> dict:
        g = self.grade if self.status == "graded" else None
        return {
            "n": self.n,
            "line": self.line,
            "question": self.question,
            "question_id": self.question_id,
            "corpus_question": self.corpus_question if self.matched else None,
            "matched": self.matched,
            "match_score": self.match_score,
            "closest_id": None if self.matched else self.closest_id,
            "answer": self.answer,
            "status": self.status,
            "overall": g.overall if g else None,
            "criteria": {c.name: c.score for c in g.criteria} if g else {},
            "key_points": [{"point": k.point, "status": k.status, "evidence": k.evidence} for k in g.key_points] if g else [],
            "wrong_claims": [{"claim": w.claim, "correction": w.correction} for w in g.wrong_claims] if g else [],
            "feedback": dict(g.feedback) if g else {},
            "reference_answer": (g.reference_answer if self.matched else None) if g else None,
            "flags": list(g.flags) if g else [],
            "model": g.model if g else None,
            "error": self.error,
        }


def _mean(xs: list[float]) -> float | None:
    return round(sum(xs) / len(xs), 1) if xs else None


@dataclass
class ScoreReport:
    source: str
    items: list[ScoredItem]
    overall: float | None  # mean over every graded answer (matched or not)
    unmatched: int  # questions not in the corpus (graded without reference, or skipped)
    format: str = ""
    interviewer: str = ""
    speakers: list[str] = field(default_factory=list)
    small_talk: int = 0  # turns ignored as small talk
    threshold: float = 0.0
    elapsed_s: float = 0.0
    pairs_found: int = 0  # question/answer pairs in the transcript: more than len(items) when max_pairs cut it

    @property
    def overall_matched(self) -> float | None:
        return _mean([i.overall for i in self.items if i.matched and i.overall is not None])

    @property
    def graded(self) -> int:
        return sum(i.status == "graded" for i in self.items)

    @property
    def skipped(self) -> int:
        return sum(i.status == "skipped" for i in self.items)

    @property
    def errors(self) -> int:
        return sum(i.status == "error" for i in self.items)

    def to_dict(self) -> dict:
        """The stable JSON shape, documented in bot/reports/json_report.py."""
        return {
            "source": self.source,
            "format": self.format,
            "interviewer": self.interviewer,
            "speakers": list(self.speakers),
            "overall": self.overall,
            "overall_matched": self.overall_matched,
            "questions": len(self.items),
            "graded": self.graded,
            "unmatched": self.unmatched,
            "skipped": self.skipped,
            "errors": self.errors,
            "small_talk_turns": self.small_talk,
            "match_threshold": self.threshold,
            "elapsed_s": round(self.elapsed_s, 2),
            "items": [i.to_dict() for i in self.items],
        }


def unmatched_question(text: str) -> Question:
    """A question that is not in the corpus: graded on generic key points, without a reference.
    The id hashes the text, so the grade cache never mixes two different unmatched questions."""
    qid = "transcript:" + hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:12]
    return Question(qid, text, NO_REFERENCE, list(GENERIC_KEY_POINTS), language_of(text), has_reference=False)


def score_text(text: str, name: str, *, index, corpus: dict, save: Callable, grade: Callable,
               interviewer: str | None = None, input_format: str | None = None, skip_unmatched: bool = False,
               progress: Callable[[int, int], None] | None = None, threshold: float | None = None,
               max_pairs: int | None = None) -> ScoreReport:
    """Score a transcript given as text (`name` labels messages: a file name or an upload's title)
    against the `corpus` (id -> Item). `save(question, answer)` keeps one answer in the
    history before anything is graded and returns its record; `grade(rec, question)` grades it
    (the application layer's: bot.service.InterviewService.score_transcript passes both).
    `max_pairs`: only the first pairs are matched, saved and graded (report.pairs_found says how
    many there were).

    Grading errors do not raise: the item gets status "error" (its answer stays saved, `pending` or
    `error`, in the history) and the other items are still graded; after an LLM/model failure the
    remaining answers are saved but not sent to the failing endpoint again (an answer too long for
    the model is not such a failure)."""
    start = time.monotonic()
    turns, fmt = read_turns(text, name, input_format)
    matcher = QuestionMatcher(index, corpus, threshold)
    pairing = pair_transcript(turns, interviewer=interviewer, matches=lambda q: matcher.best(q).matched, name=name)

    items: list[ScoredItem] = []
    for n, p in enumerate(pairing.pairs[:max_pairs], 1):
        m = matcher.best(p.question)
        items.append(ScoredItem(n, p.question, p.line, p.answer, p.answer_line, m.matched,
                                m.question_id if m.matched else None, m.corpus_question, m.score,
                                closest_id=m.question_id))
    if not any(i.matched for i in items) and skip_unmatched:
        raise TranscriptError(f"{name}: none of the {len(items)} question(s) is in the corpus, and "
                              "--skip-unmatched skips them all.", "Drop --skip-unmatched to grade them without a reference.")

    todo = [i for i in items if i.matched or not skip_unmatched]
    for i in items:
        if skip_unmatched and not i.matched:
            i.status = "skipped"
    if progress:
        progress(0, len(todo))
    broken: InterviewError | None = None
    saved = []
    for it in todo:  # every answer is saved before any grading starts
        question = Question.from_item(corpus[it.question_id]) if it.matched else unmatched_question(it.question)
        saved.append((it, question, save(question, it.answer)))
    # Answers to one question are graded one after another, so its prompt prefix stays in the
    # model's cache (interleaved, every answer re-evaluated it: 19 s an answer instead of ~6 s).
    order = sorted(range(len(saved)), key=lambda k: (saved[k][1].id, k))
    for done, k in enumerate(order, 1):
        it, question, rec = saved[k]
        if broken is not None:
            it.status, it.error = "error", f"not graded: {broken.message}"
        else:
            try:
                it.grade, it.status = grade(rec, question), "graded"
            except ContextOverflowError as e:  # this answer only: the model still grades the others
                it.status, it.error = "error", e.message
            except (LLMError, ModelError) as e:  # the endpoint or model is down: do not retry per item
                broken, it.status, it.error = e, "error", e.message
            except InterviewError as e:  # e.g. an invalid grade after retries: this item only
                it.status, it.error = "error", e.message
            except Exception as e:  # noqa: BLE001 - a grader bug costs this item, not the report
                it.status, it.error = "error", f"internal error while grading: {type(e).__name__}: {e}"
        if progress:
            progress(done, len(todo))

    return ScoreReport(
        source=name, items=items, overall=_mean([i.overall for i in items if i.overall is not None]),
        unmatched=sum(not i.matched for i in items), format=fmt, interviewer=pairing.interviewer,
        speakers=pairing.speakers, small_talk=pairing.small_talk, threshold=matcher.threshold,
        elapsed_s=time.monotonic() - start, pairs_found=len(pairing.pairs))

