"""A fake model with queued replies, for tests: deterministic and instant."""
from __future__ import annotations

import json
from collections import deque

from bot.errors import LLMError
from bot.llm.base import LLM


class FakeLLM(LLM):
    name = "fake"
    caches_prefix = True  # records prepare() calls, so tests see the warm-ups

    def __init__(self, replies: list | None = None, *, concurrency: int = 1):
        self.concurrency = concurrency
        # Each reply is a dict (sent as JSON), a str (sent as is) or an Exception (raised).
        self.replies: deque = deque(replies or [])
        self.calls: list[dict] = []
        self.prepared: list[tuple[str, str]] = []

    def queue(self, *replies) -> "FakeLLM":
        self.replies.extend(replies)
        return self

    def generate_json(self, system: str, user: str, schema: dict, max_tokens: int = 1024) -> str:
        self.calls.append({"system": system, "user": user, "schema": schema})
        if not self.replies:
            raise LLMError("FakeLLM has no queued reply left.", "Queue one with FakeLLM.queue().")
        reply = self.replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)

    def prepare(self, system: str, user_prefix: str) -> None:
        self.prepared.append((system, user_prefix))
