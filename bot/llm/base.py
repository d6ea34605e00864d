"""What every LLM backend offers the grader.

A backend takes a system prompt and a user prompt and returns text that should satisfy a JSON
schema. `prepare()` lets a backend start on the fixed part of the prompt (everything before the
candidate's answer) while the candidate is still typing; backends without a cache ignore it.
"""
from __future__ import annotations

from typing import Protocol


class LLM(Protocol):
    name: str
    # Capabilities, declared by each backend; the application layer (bot.service) schedules by them.
    concurrency: int  # generate_json calls that may run at once (the embedded model: 1)
    caches_prefix: bool  # prepare() does real work, worth scheduling while the candidate types

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        """Return the model's reply (JSON text). Raise LLMError when the backend fails."""

    def prepare(self, system: str, user_prefix: str) -> None:
        """Optionally pre-compute the prompt prefix; must be safe to skip."""
