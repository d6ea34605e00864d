"""Listener registration: each module registers its own listeners; the handlers stay thin."""
from __future__ import annotations

from bot.slack.core import InterviewCore


def register(app, core: InterviewCore) -> None:
    from bot.slack.listeners import commands, files, home, messages

    for module in (commands, messages, home, files):
        module.register(app, core)
