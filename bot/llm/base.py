"""What every LLM backend offers the grader.

A backend takes a system prompt and a user prompt and returns text that should satisfy a JSON
schema. `prepare()` lets a backend start on the fixed part of the prompt (everything before the
candidate's answer) while the candidate is still typing; backends without a cache ignore it.

Backends subclass `LLM`, so that a capability one does not declare has its default here and the
callers never probe for it.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Protocol

# (messages, continuation, options) -> {option: probability}, or None when it cannot be read
Distribution = Callable[[list[dict], str, list[str]], "dict[str, float] | None"]

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
    concurrency: int = 1  # generate_json calls that may run at once (the embedded model: 1)
    caches_prefix: bool = False  # prepare() does real work, worth scheduling while the candidate types
    # The probabilities of the next token over `options` after the conversation and `continuation`;
    # None where the backend cannot read token probabilities: the grader then skips what needs them
    # (the fact check, the score belief), so its absence must stay visible, not a method that fails.
    distribution: Distribution | None = None
    writes_slowly: bool = False  # seconds per sentence (the embedded model): bot.followups asks the template
    # Runs on this machine's cores (the embedded model): work beside its calls slows them down, so
    # the grader reads the answer after the reply rather than while it is awaited.
    uses_our_cores: bool = False

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        """Return the model's reply (JSON text). Raise LLMError when the backend fails."""
        raise NotImplementedError

    def prepare(self, system: str, user_prefix: str) -> None:
        """Optionally pre-compute the prompt prefix; must be safe to skip, and to stop early once
        `should_yield()` says so."""

    def close(self, timeout: float = 30.0) -> bool:
        """Free what the backend holds once no call is in flight. False when the call in flight
        did not end within `timeout` (the caller then exits without the interpreter's teardown)."""
        return True
