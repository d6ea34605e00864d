"""The fact check: the model's P(true) of each statement of the answer, asked one at a time in a
short conversation of its own (question and reference, then the statement).

Measured on the 1.5B model: correct statements 0.6-0.9, swapped or false ones 0.45-0.55, a signal
its one-shot JSON reply missed. Asked after its own grading reply instead, it echoed that reply's
verdict. Backends without token probabilities skip it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from string import Template

from bot.grading import lexical
from bot.grading import prompt as prompts
from bot.grading.evidence import normalize
from bot.grading.question import Question
from bot.grading.result import FactCheck
from bot.llm.base import LLM

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())
# A fact check that failed (the model raised mid-way): the grade is computed without it, under
# other weights, and says so (a flag on the grade and a note in its feedback).
FACT_CHECK_FAILED = "fact_check_failed"
MIN_STATEMENT_CHARS, MAX_STATEMENTS = 6, 10  # budget: ~0.5 s per statement locally
SLOT = "\x00STATEMENT\x00"


@dataclass
class FactCheckResult:
    checks: list[FactCheck] = field(default_factory=list)
    failed: bool = False  # the model raised mid-way: no check is kept



def prompt(q: Question, statement: str | None) -> tuple[str, str]:
    """(system, user) of the fact check; with statement None, the user prompt up to the statement.
    The statement is the candidate's text: fenced like the answer in the grading prompt."""
    system = prompts.load_prompt("factcheck_system.md").strip()
    user = Template(prompts.load_prompt("factcheck_user.md")).safe_substitute(
        question=q.question.strip(), reference=q.reference.strip(),
        statement=SLOT if statement is None else prompts.sanitize_answer(statement))
    return system, user.split(SLOT)[0] if statement is None else user


def statements(answer: str) -> list[str]:
    """The sentences checked: the longest MAX_STATEMENTS of at least MIN_STATEMENT_CHARS."""
    found = [x for x in lexical.sentences(answer) if len(normalize(x)) >= MIN_STATEMENT_CHARS]
    return sorted(found, key=len, reverse=True)[:MAX_STATEMENTS]


def check(llm: LLM, q: Question, answer: str) -> FactCheckResult:
    """P(true) of each statement of `answer` against `q` (question and reference stay in the KV
    cache: ~0.5 s per statement locally). No checks where the backend gives no token
    probabilities; `failed` where it raised (logged)."""
    read = llm.distribution
    if read is None:
        return FactCheckResult()
    todo = statements(answer)
    if todo:
        prompts.warm(llm, *prompt(q, None))
    checks = []
    for st in todo:
        system, ask = prompt(q, st)
        try:
            dist = read([{"role": "system", "content": system}, {"role": "user", "content": ask}], "",
                        ["true", "false"])
        except Exception:  # noqa: BLE001 - the grade goes on without it, and says so
            log.warning("The fact check failed; grading without it", exc_info=True)
            return FactCheckResult([], True)
        if not dist:  # the backend gives no token probabilities: a missing feature, not a failure
            return FactCheckResult()
        checks.append(FactCheck(st, round(dist["true"], 4)))
    return FactCheckResult(checks, False)
