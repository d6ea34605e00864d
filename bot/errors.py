"""One exception hierarchy for the whole product.

Every error carries a message (what is wrong, where) and a hint (how to fix it).
The CLI prints both and exits with `exit_code`; Slack posts them. No traceback reaches a user.
"""
from __future__ import annotations


class InterviewError(Exception):
    """Base class. `hint` says what the user should do next."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  Fix: {self.hint}"


class UsageError(InterviewError):
    """The command line or an input file is not what we accept."""

    exit_code = 2


class ConfigError(InterviewError):
    """A setting (env var or config file) is missing or malformed."""

    exit_code = 2


class CorpusError(InterviewError):
    """A corpus file does not follow the format. `problems` holds `file:line: what` strings."""

    exit_code = 1

    def __init__(self, problems: list[str], hint: str | None = None):
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in the corpus:\n" + "\n".join(
            f"  {p}" for p in self.problems
        )
        super().__init__(head, hint or "Edit the file(s) at the lines shown; README.md describes the format.")


class IndexNotReadyError(InterviewError):
    """The Chroma collection is missing or out of date."""

    def __init__(self, message: str = "The question index is empty.", hint: str | None = None):
        super().__init__(message, hint or "Run `interview ingest` to embed the corpus.")


class StoreError(InterviewError):
    """Chroma or SQLite could not be opened or written."""


class NotFoundError(InterviewError):
    """A question, session or file the user named does not exist."""


class ModelError(InterviewError):
    """The local model file is missing, corrupt, or its runtime is not installed."""


class LLMError(InterviewError):
    """The LLM endpoint failed (network, auth, rate limit, bad reply)."""


class ContextOverflowError(LLMError):
    """One prompt (its answer) is longer than the model's context. The model itself works: other
    answers can still be graded."""


class GradingError(InterviewError):
    """The grader could not produce a valid grade (after retries). The answer is kept."""


class ConflictError(InterviewError):
    """Someone else (another window, process or replica) changed the same thing first."""
