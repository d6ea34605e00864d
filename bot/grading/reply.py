"""The model's reply: one schema-constrained call that lists the key points it finds missing, the
wrong claims (quoted, with the correction), then a 0-5 rubric score, read as the expected value
over its token probabilities where the backend gives them."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import jsonschema

from bot.errors import GradingError
from bot.grading import prompt as prompts
from bot.grading.evidence import WEAK, quote_support
from bot.grading.question import Question
from bot.grading.result import FactCheck, WrongClaim
from bot.grading.signals import Observations
from bot.llm.base import LLM


@dataclass
class ModelReply:
    missing: set[int]  # 0-based key points it lists as missing
    wrong_claims: list[WrongClaim]  # only those whose quote occurs in the answer
    belief: float  # its expected 0-5 rubric score

    def observations(self, fact_checks: list[FactCheck]) -> Observations:
        """What the model said, as the signals read it, with the fact check's statements."""
        return Observations(self.missing, self.wrong_claims, self.belief, fact_checks)


def ask(llm: LLM, q: Question, answer: str, *, retries: int = 2) -> ModelReply:
    """The model's reply on `answer`, graded against `q` as the model reads it (`in_language`)."""
    p = prompts.render(q.question, q.reference, q.key_points, q.language)
    prompts.warm(llm, p.system, p.user_prefix)  # restores this question's cached prefix
    messages = [{"role": "system", "content": p.system}, {"role": "user", "content": p.user(answer)}]
    text, reply = _valid_reply(llm, messages, len(q.key_points), retries)
    belief = score_belief(llm, messages, text, reply)
    return ModelReply({n - 1 for n in reply["missing_points"] if 1 <= n <= len(q.key_points)},
                      verified_claims(reply["wrong_claims"], answer), belief)


def _valid_reply(llm: LLM, messages: list[dict], n_key_points: int, retries: int) -> tuple[str, dict]:
    """The reply's text and JSON, valid against its schema; retried `retries` times."""
    schema = prompts.reply_schema(n_key_points)
    problem = ""
    for _ in range(retries + 1):
        text = llm.generate_json(messages[0]["content"], messages[1]["content"], schema)  # LLMError propagates
        try:
            reply = json.loads(text)
            if isinstance(reply, dict) and isinstance(reply.get("missing_points"), list):
                # Endpoints without schema enforcement may write the numbers as strings.
                reply["missing_points"] = [int(m) if isinstance(m, str) and m.strip().isdigit() else m
                                           for m in reply["missing_points"]]
            error = jsonschema.exceptions.best_match(_validator(n_key_points).iter_errors(reply))
            if error is not None:
                raise error
            return text, reply
        except (json.JSONDecodeError, jsonschema.ValidationError) as e:
            problem = getattr(e, "message", None) or str(e)
    raise GradingError(
        f"The model {llm.name} returned an invalid grade {retries + 1} times ({problem[:200]}).",
        "The answer is saved; retry later, or use a stronger model (INTERVIEW_LLM_MODEL).",
    )


@lru_cache(maxsize=64)
def _validator(n_key_points: int):
    """The reply schema's validator, its schema checked once (jsonschema.validate checks the schema
    on every call: about 15 ms a reply)."""
    schema = prompts.reply_schema(n_key_points)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def score_belief(llm: LLM, messages: list[dict], text: str, reply: dict) -> float:
    """The model's expected rubric score (0-5): probability-weighted over the score options,
    which tracks human grades more smoothly than the single digit it wrote."""
    read = llm.distribution
    m = re.search(r'"score"\s*:\s*', text)
    dist = None
    if read is not None and m is not None:
        try:
            dist = read(messages, text[: m.end()], [str(v) for v in prompts.SCORE_ENUM])
        except Exception:  # noqa: BLE001 - the written digit is still a valid judgement
            dist = None
    return sum(int(k) * v for k, v in dist.items()) if dist else float(reply["score"])


def verified_claims(claims: list[dict], answer: str) -> list[WrongClaim]:
    """The model's wrong claims that the candidate really made (a quote found in the answer)."""
    wrong, seen = [], set()
    for w in claims:
        claim = w["claim"].strip()
        if claim and claim not in seen and quote_support(claim, answer) >= WEAK:
            seen.add(claim)
            wrong.append(WrongClaim(claim, w["correction"].strip()))
    return wrong
