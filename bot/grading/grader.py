"""The grader: pre-checks, one schema-constrained LLM call, evidence checks, rubric score."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

import jsonschema

from bot import embeddings
from bot.errors import GradingError, LLMError
from bot.grading import prompt as prompts
from bot.grading import rubric
from bot.grading.evidence import FULL, WEAK, quote_support
from bot.grading.prechecks import INJECTION, run_prechecks
from bot.grading.result import COVERED, MISSING, PARTIAL, Grade, KeyPointResult, WrongClaim
from bot.llm.base import LLM

SENTENCE_SPLIT = r"(?<=[。！？!?；;\n])|(?<=\.)\s+"


@dataclass
class Question:
    """What the grader needs to know about a question (a corpus item, or a transcript's question)."""
    id: str
    question: str
    reference: str
    key_points: list[str]
    language: str = "zh"

    @classmethod
    def from_item(cls, item) -> "Question":
        return cls(item.id, item.question, item.answer, list(item.key_points), item.language or "zh")


def _sentences(text: str) -> list[str]:
    import re

    parts = [p.strip() for p in re.split(SENTENCE_SPLIT, text) if p and p.strip()]
    return parts or [text]


def key_point_similarity(points: list[str], answer: str) -> list[float]:
    """Deterministic feature: for each key point, the best cosine match among the answer's sentences."""
    if not points or not answer.strip():
        return [0.0] * len(points)
    sims = embeddings.cosine(embeddings.embed_queries(points), embeddings.embed_passages(_sentences(answer)))
    return [float(x) for x in sims.max(axis=1)]


class Grader:
    def __init__(self, llm: LLM, *, retries: int = 2, check_topic: bool = True):
        self.llm = llm
        self.retries = retries
        self.check_topic = check_topic

    def prepare(self, q: Question) -> None:
        """Start on the prompt prefix (runs while the candidate types). Failures only cost speed."""
        p = prompts.render(q.question, q.reference, q.key_points, q.language)
        try:
            self.llm.prepare(p.system, p.user_prefix)
        except Exception:  # noqa: BLE001 - a warm-up must never break a session
            pass

    def grade(self, q: Question, answer: str) -> Grade:
        start = time.monotonic()
        pre = run_prechecks(q.question, q.reference, answer, check_topic=self.check_topic)
        grade = Grade(question_id=q.id, question=q.question, answer=answer, overall=0.0,
                      reference_answer=q.reference, flags=list(pre.flags), model=self.llm.name,
                      prompt_version=prompts.prompt_version())
        sims = key_point_similarity(q.key_points, answer) if not pre.stop else [0.0] * len(q.key_points)
        if pre.stop:
            grade.key_points = [KeyPointResult(p, MISSING, similarity=s) for p, s in zip(q.key_points, sims)]
            grade.overall, grade.criteria = rubric.score(grade.key_points, [], 0, 0)
            grade.model = "prechecks"
            grade.feedback = {
                "strengths": "",
                "missing": list(q.key_points),
                "next_step": f"{pre.reason} Start with: {q.key_points[0]}" if q.key_points else pre.reason,
                "reason": pre.reason,
            }
        else:
            reply = self._ask(q, answer)
            self._judge(grade, q, answer, reply, sims)
        if INJECTION in grade.flags:
            grade.feedback["warning"] = "The answer contains instructions to the grader; they were ignored."
        grade.latency_ms = int((time.monotonic() - start) * 1000)
        return grade

    def _ask(self, q: Question, answer: str) -> dict:
        p = prompts.render(q.question, q.reference, q.key_points, q.language)
        schema = prompts.reply_schema(len(q.key_points))
        problem = ""
        for _ in range(self.retries + 1):
            try:
                text = self.llm.generate_json(p.system, p.user(answer), schema)
            except LLMError:
                raise
            try:
                reply = json.loads(text)
                jsonschema.validate(reply, schema)
                return reply
            except (json.JSONDecodeError, jsonschema.ValidationError) as e:
                problem = getattr(e, "message", None) or str(e)
        raise GradingError(
            f"The model {self.llm.name} returned an invalid grade {self.retries + 1} times ({problem[:200]}).",
            "The answer is saved; retry later, or use a stronger model (INTERVIEW_LLM_MODEL).",
        )

    def _judge(self, grade: Grade, q: Question, answer: str, reply: dict, sims: list[float]) -> None:
        points = []
        for i, (point, sim) in enumerate(zip(q.key_points, sims), 1):
            r = reply["key_points"][f"kp{i}"]
            status, evidence = r["status"], r["evidence"].strip()
            support = quote_support(evidence, answer) if evidence else 0.0
            kp = KeyPointResult(point, status, evidence, model_status=status, similarity=round(sim, 4))
            if status in (COVERED, PARTIAL):
                if support < WEAK:
                    kp.status, kp.evidence = MISSING, ""
                    kp.note = "the quoted evidence does not occur in the answer"
                elif support < FULL and status == COVERED:
                    kp.status = PARTIAL
                    kp.note = "the evidence only loosely matches the answer"
            else:
                kp.evidence = ""
            points.append(kp)
        wrong, seen = [], set()
        for w in reply["wrong_claims"]:
            claim = w["claim"].strip()
            # A "wrong claim" the candidate never made is the model's invention: drop it.
            if claim and quote_support(claim, answer) >= WEAK and claim not in seen:
                seen.add(claim)
                wrong.append(WrongClaim(claim, w["correction"].strip()))
        grade.key_points, grade.wrong_claims = points, wrong
        grade.overall, grade.criteria = rubric.score(points, wrong, int(reply["depth"]), int(reply["clarity"]))
        missing = [p.point for p in points if p.status != COVERED]
        grade.feedback = {
            "strengths": reply["strengths"].strip(),
            "missing": missing,
            "next_step": reply["next_step"].strip() or (f"Study: {missing[0]}" if missing else ""),
        }
