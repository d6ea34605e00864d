"""Grade identity. A stored grade is reused only when everything that made it is unchanged:

- the grading version: a hash of every source file of the grading (bot/grading/*.py: the reply
  schema, the rubric constants of the signals, verdicts and pre-checks, the feedback's sentences,
  the reducer), the judge's run-time code and its meta file (its weights' hash, its temperature),
  the prompts the grading renders, the learned weights (`weights.json`), and the model's name;
- the question's fingerprint: its text, reference answer and key points (computed where the
  question is defined, question.py).

The sources are hashed whole rather than a list of their constants: a list has to be kept by
hand, and a constant left out of it served stale grades after it changed (evidence.WEAK, the
pre-check patterns). Hence also nothing of the grading's stages is imported here: a hash of files
needs no module of it, and version.py stays out of the grader's import circle. The one import,
question.py's digest (the same hash as the question's fingerprint), imports no stage.
"""
from __future__ import annotations

from pathlib import Path

from bot.config import PROMPTS_DIR
from bot.grading.question import digest
from bot.judge import model as judge_model

GRADING_DIR = Path(__file__).resolve().parent  # its *.py and *.json (weights.json)
JUDGE_DIR = judge_model.HERE
# the judge modules that run at grading time (train.py, data.py and encoder.py only build it)
JUDGE_SOURCES = ("model.py", "packing.py", "e5file.py")
PROMPT_FILES = ("grade_system.md", "grade_user.md", "factcheck_system.md", "factcheck_user.md")


def _text(path: Path) -> str:
    """A file's text as hashed: "" when absent (a judge not built yet), line ends as in git, so a
    checkout with CRLF line ends computes the same version."""
    try:
        return path.read_bytes().replace(b"\r\n", b"\n").decode("utf-8")
    except FileNotFoundError:
        return ""


def sources() -> list[Path]:
    """Every file whose text changes a grade, in a fixed order."""
    metas = [judge_model.judge_dir(structural) / judge_model.META_FILE for structural in (False, True)]
    return [*sorted(GRADING_DIR.glob("*.py")), *sorted(GRADING_DIR.glob("*.json")),
            *(JUDGE_DIR / name for name in JUDGE_SOURCES), *metas,
            *(PROMPTS_DIR / name for name in PROMPT_FILES)]


def grading_version(model: str) -> str:
    return "g-" + digest(*(f"{p.name}\x00{_text(p)}" for p in sources()), model)[:10]

