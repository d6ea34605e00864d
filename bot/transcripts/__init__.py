"""Practice transcripts: read a file (Markdown, WebVTT, SRT, Otter, JSON chat), find the interviewer's
questions and the candidate's answers, match the questions to the corpus and grade the answers.

    readers.py  one reader per format -> list[Turn]
    pairing.py  small-talk filter, merge turns, pick the interviewer, pair questions with answers
    scoring.py  score_file / score_text -> ScoreReport (the entry point for the CLI and Slack)
"""
from __future__ import annotations

from bot.errors import UsageError


class TranscriptError(UsageError):
    """A transcript file cannot be used (empty, too big, undecodable, unknown format, no questions).

    A UsageError (exit code 2): the input is not what we accept. The message names the file, and the
    line where one applies."""
