"""Parsers a user feeds, on hostile input: large inputs take time in proportion to their size."""
from __future__ import annotations

import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.errors import InterviewError


class Hang(Exception):
    """An input took longer than its time limit."""


@contextmanager
def _time_limit(seconds: float):
    def expire(*_):
        raise Hang(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- large inputs --------------------------------------------------------------------------------
# Shapes of input that made a reader quadratic (or worse): a text appended to line by line, and
# regular expressions that try a run of spaces from every position in it. Each `make(size)` gives
# about `size` characters.

def _transcript(fmt: str | None, name: str = "t.txt"):
    def parse(text: str):
        from bot.transcripts.readers import read_turns

        try:
            read_turns(text, name, fmt)
        except InterviewError:
            pass  # an error is fine here: only the time counts
    return parse


def _corpus(text: str):
    from bot.corpus import _Parser

    _Parser(Path("p.md"), text).parse()


def _anki(text: str):
    from bot.importers import _anki_text

    _anki_text(text, "d.txt")


def _csv(text: str):
    from bot.importers import _delimited

    _delimited(text, "d.csv", None)


def _cues(n: int, srt: bool) -> str:
    sep = "," if srt else "."
    head = "" if srt else "WEBVTT\n\n"
    return head + "".join(f"{i}\n00:00:01{sep}000 --> 00:00:02{sep}000\n{'Ann: hi' if i == 1 else 'more words'}\n\n"
                          for i in range(1, n))


PACK_HEAD = "---\nname: p\nlanguage: en\ndomain: d\n---\n## p-1: Q?\ntags: a\ndifficulty: easy\n### Answer\nA.\n"
LARGE_SHAPES = {
    "transcript: one turn of many lines": (lambda n: "Q: start\n" + "more of the answer\n" * (n // 19),
                                           _transcript(None)),
    "transcript: otter turn of many lines": (lambda n: "Ann  0:01\nhi\nBen  0:05\n" + "more of it\n" * (n // 11),
                                             _transcript("otter")),
    "transcript: spaces inside a line": (lambda n: "Q: x" + " " * n + "y\nA: z", _transcript(None)),
    "transcript: a line of spaces": (lambda n: "Q: x\n" + " " * n + "\nA: z", _transcript(None)),
    "transcript: name, spaces, no colon": (lambda n: "Q: x\na" + " " * n + "b\nA: z", _transcript(None)),
    "transcript: [name] and spaces": (lambda n: "1\n00:00:01,000 --> 00:00:02,000\n[Ann]" + " " * n + "x\n",
                                      _transcript("srt")),
    "transcript: vtt unnamed cues": (lambda n: _cues(n // 45, srt=False), _transcript("vtt")),
    "transcript: srt unnamed cues": (lambda n: _cues(n // 45, srt=True), _transcript("srt")),
    "transcript: srt run of digits": (lambda n: ">;" + "8" * n + "\t]`\n" + _cues(3, srt=True),
                                      _transcript("srt", "t.srt")),  # the srt library: 2,000 digits took 54 s
    "transcript: srt run of spaces": (lambda n: "x" + " " * n + "y\n" + _cues(3, srt=True), _transcript("srt", "t.srt")),
    "transcript: srt cue of '<a'": (lambda n: "1\n00:00:01,000 --> 00:00:02,000\nAnn: " + "<a" * (n // 2) + "\n",
                                    _transcript("srt")),
    "transcript: json chat": (lambda n: json.dumps([{"role": "user", "content": "an answer"}] * (n // 40)),
                              _transcript("json", "t.json")),
    "corpus: key point of spaces": (lambda n: PACK_HEAD + "### Key points\n-" + " " * n + "\n", _corpus),
    "corpus: heading of spaces": (lambda n: PACK_HEAD + "## a" + " " * n + "b\n", _corpus),
    "anki txt: field of '<'": (lambda n: "Q?\t" + "<" * n + "\n", _anki),
    "anki txt: field of '[sound:'": (lambda n: "Q?\t" + "[sound:" * (n // 7) + "\n", _anki),
    "csv: key points of spaces": (lambda n: "question,answer,key_points\nQ?,A.," + " " * (n // 40) + "x\n",
                                  _csv),  # a 40th: csv refuses a field over 128 kB
}


def cpu_seconds(parse, text: str, time_limit: float = 60) -> float:
    """CPU seconds of the fastest of 3 parses: what this process used, however busy the machine is."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        with _time_limit(time_limit):
            parse(text)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("shape", list(LARGE_SHAPES))
def test_large_inputs_take_time_in_proportion_to_their_size(shape):
    make, parse = LARGE_SHAPES[shape]
    small = cpu_seconds(parse, make(250_000), time_limit=20)
    large = cpu_seconds(parse, make(1_000_000), time_limit=20)
    assert large < 8 * max(small, 0.002), f"4x the size took {large / max(small, 1e-6):.0f}x the time"
