"""Shared plumbing of the CLI: settings, consoles, error handling, building the core objects."""
from __future__ import annotations

import functools
import getpass
import sys
from pathlib import Path

import typer
from rich.console import Console

from bot.config import Settings, load_settings
from bot.errors import InterviewError

# Plain message lines are printed with soft_wrap=True, so that long paths and `file:line: ...`
# lines stay whole when piped and can be grepped; panels and tables wrap to the terminal.
out = Console()  # results
err = Console(stderr=True)  # progress, spinners, errors: never mixed into --json output


def fail(e: InterviewError) -> None:
    from rich.markup import escape

    err.print(f"[bold red]Error:[/] {escape(e.message)}", highlight=False, soft_wrap=True)
    if e.hint:
        err.print(f"[bold]Fix:[/] {escape(e.hint)}", highlight=False, soft_wrap=True)
    raise typer.Exit(e.exit_code)


def handle_errors(fn):
    """Every command: an InterviewError becomes a clear message and an exit code, never a
    traceback (a failing history database is one: bot.db turns driver errors into StoreError); so
    do a file system error and, as a last resort, a bug (INTERVIEW_DEBUG=1 shows its traceback)."""
    import os

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InterviewError as e:
            fail(e)
        except BrokenPipeError:
            # The reader went away (`interview … | head`): stop quietly like other Unix tools, and
            # point stdout at /dev/null so the interpreter's final flush does not complain.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise SystemExit(141) from None
        except OSError as e:
            where = f" ({e.filename})" if getattr(e, "filename", None) else ""
            fail(InterviewError(f"{e.strerror or e}{where}.",
                                "Check the path, its permissions and the free disk space, then run the command again."))
        except Exception as e:  # noqa: BLE001 - the last resort: a bug must not print a traceback at a user
            if os.environ.get("INTERVIEW_DEBUG") or type(e).__module__.split(".")[0] in ("typer", "click"):
                raise  # typer.Exit and usage errors are the CLI's own way out
            fail(InterviewError(f"Internal error: {type(e).__name__}: {e}",
                                "This is a bug in interview-bot. Run the command again with INTERVIEW_DEBUG=1 for "
                                "the traceback, and report it with the command you ran."))
    return wrapper


def settings(corpus: list[Path] | None = None) -> Settings:
    s = load_settings()
    if corpus:
        s.corpus_paths = list(corpus)
    return s


def owner() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "local"


def load_items(s: Settings):
    from bot.corpus import load_items as _load

    return _load(s.corpus_paths)


def index(s: Settings, items=None, *, sync: bool = True):
    """The question index; brought up to date with the corpus first (cheap when nothing changed)."""
    from bot.index import QuestionIndex

    idx = QuestionIndex(s)
    if sync and items is not None:
        report = idx.ingest(items)
        if report.added or report.updated or report.deleted:
            err.print(f"[dim]index updated: {report.summary()}[/]")
    return idx


def llm(s: Settings):
    from rich.progress import BarColumn, DownloadColumn, Progress

    from bot.llm import get_llm

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  console=err, transient=True) as bar:
        task = None

        def progress(done: int, total: int) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task("joining the bundled model (first run only)", total=total)
            bar.update(task, completed=done)

        return get_llm(s, progress)


def read_stdin_if_dash(value: str) -> str:
    return sys.stdin.read() if value == "-" else value
