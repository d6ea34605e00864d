"""Renders the grading prompt from the files in prompts/ and builds the JSON schema of the reply.

The candidate's answer is the last thing in the user prompt, so everything before it (the prefix)
can be evaluated while the candidate is still typing.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from string import Template

from bot.config import PROMPTS_DIR

ANSWER_SLOT = "$answer"
# Where the answer goes once the template is filled: a text no question, reference or answer can
# contain (a transcript question or a follow-up quoting "$answer" moved the answer out of its fence).
_SLOT = "\x00ANSWER\x00"
MARKERS = ("<<<ANSWER", "ANSWER>>>")
LANGUAGES = {"zh": "Chinese (简体中文)", "en": "English"}
SCORE_ENUM = [0, 1, 2, 3, 4, 5]  # one token each, so the model's belief can be read as a distribution


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    return (PROMPTS_DIR / name).read_text(encoding="utf-8")


def prompt_version() -> str:
    """Short hash of the prompt files and the reply schema: what the model was asked. Stored with
    every grade; an evaluation run is identified by it (its observations depend on nothing else)."""
    h = hashlib.sha256()
    for name in ("grade_system.md", "grade_user.md", "factcheck_system.md", "factcheck_user.md"):
        h.update(load_prompt(name).encode("utf-8"))
    h.update(repr(reply_schema(8)).encode("utf-8"))
    return "p-" + h.hexdigest()[:8]


def sanitize_answer(answer: str) -> str:
    """The answer may not close its own fence and smuggle text outside it."""
    for m in MARKERS:
        answer = answer.replace(m, m.replace("ANSWER", "answer"))
    return answer.strip()


@dataclass
class RenderedPrompt:
    system: str
    user_prefix: str  # everything up to the answer
    user_suffix: str  # the closing fence

    def user(self, answer: str) -> str:
        return self.user_prefix + sanitize_answer(answer) + self.user_suffix


def render(question: str, reference: str, key_points: list[str], language: str) -> RenderedPrompt:
    system = Template(load_prompt("grade_system.md")).safe_substitute(
        feedback_language=LANGUAGES.get(language, language or "the language of the question"))
    points = "\n".join(f"{i}. {sanitize_answer(p)}" for i, p in enumerate(key_points, 1))
    # A transcript's question (and a follow-up, which quotes the candidate) is the candidate's text
    # too: none of these may open or close the answer's fence.
    user = Template(load_prompt("grade_user.md")).safe_substitute(
        question=sanitize_answer(question), reference=sanitize_answer(reference), key_points=points,
        answer=_SLOT)
    prefix, _, suffix = user.partition(_SLOT)
    return RenderedPrompt(system.strip(), prefix, suffix.rstrip() + "\n")


def shared_system() -> str:
    """The grading system prompt: the same for every question (814 of a question's ~1,300 prefix
    tokens, ~14 s on a slow 2-core machine)."""
    return render("", "", [], "").system


def warm(llm, system: str, user_prefix: str) -> None:
    """Evaluate a prompt prefix into the model's cache (`llm.prepare`). The shared grading system
    prompt is kept as a prefix of its own, in memory and on disk, so a question never seen before
    evaluates only its own part. Failures only cost speed: a warm-up never breaks a grading."""
    try:
        if system == shared_system():
            llm.prepare(system, "")
        llm.prepare(system, user_prefix)
    except Exception:  # noqa: BLE001 - a warm-up must never break a grading
        pass


def reply_schema(n_key_points: int) -> dict:
    """The reply's JSON schema, in the order the model must think: what is missing, what is wrong,
    then the rubric score. Measured with the bundled 1.5B model: asked for scores first, or for
    per-criterion scores, it gave 4/4 to a confidently wrong answer; asked to write out the
    missing points first and then one rubric score, it separated strong (8) from wrong (1); the
    missing points are now asked for by number: several times fewer tokens, about as good (Mohler
    dev, 24 answers: Pearson 0.73 vs 0.77 written out).
    The score is a 0-5 enum because the local grammar converter ignores minimum/maximum; strings
    and lists are bounded so a rambling model cannot spend minutes."""
    return {
        "type": "object",
        "properties": {
            # Numbers, not texts: a few tokens instead of dozens (generation is the slow part
            # locally: ~8 tok/s), and a number names its key point without fuzzy matching.
            "missing_points": {"type": "array", "maxItems": n_key_points,
                               "items": {"type": "integer", "enum": list(range(1, n_key_points + 1)) or [1]}},
            "wrong_claims": {"type": "array", "maxItems": 3, "items": {
                "type": "object",
                "properties": {"claim": {"type": "string", "maxLength": 120},
                               "correction": {"type": "string", "maxLength": 120}},
                "required": ["claim", "correction"], "additionalProperties": False}},
            "score": {"type": "integer", "enum": SCORE_ENUM},
        },
        "required": ["missing_points", "wrong_claims", "score"],
        "additionalProperties": False,
    }
