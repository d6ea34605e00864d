"""The Slack face of interview-bot: mock interviews in threads, transcript scoring, App Home.

`build_app(settings, service)` returns the bolt App; `interview slack` runs it (bot/cli/slack_cmd.py).
"""
from __future__ import annotations


def build_app(*args, **kwargs):
    # Imported lazily so `import bot.slack` costs nothing for the terminal commands.
    from bot.slack.app import build_app as _build

    return _build(*args, **kwargs)
