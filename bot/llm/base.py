"""What every LLM backend offers the grader.

A backend takes a system prompt and a user prompt and returns text that should satisfy a JSON
schema. `prepare()` lets a backend start on the fixed part of the prompt (everything before the
candidate's answer) while the candidate is still typing; backends without a cache ignore it.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Protocol

# A warm-up gives way to an answer: the service runs warm-ups under `yielding_to(gate_wanted)`, and
# a backend's prepare() stops between chunks once it says so (an answer pasted while the next
# question's prefixes were warming waited for all of them: most of a 95 s first grade).
_yield_to: ContextVar[Callable[[], bool] | None] = ContextVar("yield_to", default=None)


@contextmanager
def yielding_to(wanted: Callable[[], bool]) -> Iterator[None]:
    token = _yield_to.set(wanted)
    try:
        yield
    finally:
        _yield_to.reset(token)


def should_yield() -> bool:
    """Is something more urgent than this warm-up waiting for the model?"""
    wanted = _yield_to.get()
    return bool(wanted is not None and wanted())


class LLM(Protocol):
    name: str
    # Capabilities, declared by each backend; the application layer (bot.service) schedules by them.
    concurrency: int  # generate_json calls that may run at once (the embedded model: 1)
    caches_prefix: bool  # prepare() does real work, worth scheduling while the candidate types

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        """Return the model's reply (JSON text). Raise LLMError when the backend fails."""

    def prepare(self, system: str, user_prefix: str) -> None:
        """Optionally pre-compute the prompt prefix; must be safe to skip, and to stop early once
        `should_yield()` says so."""
