"""`interview start` (a mock interview in the terminal) and `interview grade` (one answer)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors, out
from bot.errors import InterviewError, NotFoundError, UsageError

COMMANDS = ("/skip", "/quit")
END_HELP = "Finish with a line holding only [bold].[/] (or two empty lines, or Ctrl-D). " \
           "Commands: [bold]/skip[/], [bold]/quit[/] (resume later with --resume)."


def read_answer(stream=None) -> str | None:
    """Multi-line answer from the terminal. None means end of input (Ctrl-D on an empty answer)."""
    stream = stream or sys.stdin
    lines: list[str] = []
    blank = 0
    while True:
        line = stream.readline()
        if line == "":  # EOF
            return "\n".join(lines).strip() if lines else None
        line = line.rstrip("\n")
        if not lines and line.strip() in COMMANDS:
            return line.strip()  # a command on its own line acts at once
        if line.strip() == "." or (not line.strip() and blank >= 1 and lines):
            return "\n".join(lines).strip()
        blank = blank + 1 if not line.strip() else 0
        if line.strip() or lines:
            lines.append(line)


# Ctrl-C gives the model this long to finish the call in flight before we leave without it (a
# prompt's evaluation runs for tens of seconds on 2 cores, and the candidate asked to stop now).
INTERRUPT_WAIT_S = 1.0


# The terminal's stderr, kept before the model starts loading: while it loads (in a background
# thread) file descriptor 2 points at a temporary file that is filtered and written out when the
# load ends (bot.llm.local), and a Ctrl-C message written there meanwhile was never shown.
_TERMINAL: list[int] = []


def _keep_terminal() -> None:
    import os

    if not _TERMINAL:
        sys.__stderr__.flush()
        _TERMINAL.append(os.dup(sys.__stderr__.fileno()))


def _leave(service, message: str, code: int) -> None:
    """Ctrl-C or /quit: every answer is already committed; stop the model's threads, then exit."""
    import os

    # To the terminal itself: a rich status line interrupted while it starts leaves sys.stderr
    # redirected into its buffer, and the model's load may hold file descriptor 2 (above).
    sys.__stderr__.flush()
    data = (message + "\n").encode("utf-8", errors="replace")
    while data:
        data = data[os.write(_TERMINAL[0] if _TERMINAL else 2, data):]
    if not service.close(INTERRUPT_WAIT_S if code == 130 else 30.0):
        # A warm-up is still inside llama.cpp: leave without running the interpreter's
        # teardown (which would free the model under it); every answer is already on disk.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise typer.Exit(code)


def interruptible(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` in a worker thread, so that Ctrl-C reaches the main thread at once: a
    call inside llama.cpp holds the main thread until it returns (30 s seen while a prompt was
    evaluated). The worker is a daemon: leaving does not wait for it."""
    import threading

    box: dict = {}

    def work():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread as it is
            box["error"] = e

    t = threading.Thread(target=work, daemon=True, name="grading")
    t.start()
    while t.is_alive():
        t.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]


class _Shown:
    """What the terminal shows while an answer is graded and the next step is chosen: a spinner
    saying what it waits for, the grade (as soon as its score is known: the model's corrections
    filled in when they come), its reference, then the spinner again while a follow-up is written.
    Called from the grading thread (`interruptible`)."""

    def __init__(self, follow_up: bool):
        self.status = None
        self.live = None
        self.follow_up = follow_up  # its grade is on the points asked about: they are its reference

    def stage(self, text: str) -> None:
        if self.status is None:
            self.status = err.status(text, spinner="dots")
            self.status.start()
        else:
            self.status.update(text)

    def _quiet(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def preview(self, quick) -> None:
        from rich.live import Live

        from bot.reports.terminal import grade_panel

        self._quiet()
        self.live = Live(grade_panel(quick, pending="the model is looking for wrong claims to correct…"), console=out,
                         auto_refresh=False, transient=False)
        self.live.start(refresh=True)

    def graded(self, grade) -> None:
        from bot.reports.terminal import grade_panel, reference_panel

        self._quiet()
        if self.live is not None:
            self.live.update(grade_panel(grade), refresh=True)
            self.live.stop()
            self.live = None
        else:
            out.print(grade_panel(grade))
        if grade.reference_answer and not self.follow_up:
            out.print(reference_panel(grade))

    def done(self) -> None:
        self._quiet()
        if self.live is not None:  # Ctrl-C while the model checks: the shown grade stays as it is
            self.live.stop()
            self.live = None


def _go_on(service, follow_up: bool, call, *args, **kwargs):
    """Grade a saved answer (or save and grade one) through the service and show what comes of it:
    the grade, or why it failed (the answer stays saved). Returns the service's Turn."""
    shown = _Shown(follow_up)
    shown.stage("grading…")
    try:
        turn = interruptible(call, *args, stage=shown.stage, preview=shown.preview, graded=shown.graded, **kwargs)
    finally:
        shown.done()
    if turn.error is not None:
        err.print(f"[red]Could not grade this answer:[/] {turn.error.message}")
        if turn.error.hint:
            err.print(f"[bold]Fix:[/] {turn.error.hint}")
        err.print("[yellow]Your answer is saved; `interview start --resume` grades it later.[/]")
    return turn


@handle_errors
def start(count: int = typer.Option(5, "--count", "-n", help="Number of questions."),
          topic: str = typer.Option(None, "--topic", "-t", help="Only questions with this tag or word."),
          pack: list[str] = typer.Option(None, "--pack", "-p", help="Only this pack (repeatable); see `interview corpus list --packs`."),
          lang: str = typer.Option(None, "--lang", help="Only questions in this language: zh or en."),
          difficulty: str = typer.Option(None, "--difficulty", help="Only easy, medium or hard questions."),
          resume: bool = typer.Option(False, "--resume", help="Continue your last unfinished session."),
          follow_ups: int = typer.Option(None, "--follow-ups", help="Follow-up questions on what an answer missed (0: none; default INTERVIEW_FOLLOW_UPS, 1)."),
          review: bool = typer.Option(False, "--review", help="Only the questions due for review."),
          new: bool = typer.Option(False, "--new", help="Only questions you have not answered before."),
          profile: str = typer.Option(None, "--profile", help="Whose history and schedule (default: your user name)."),
          seed: int = typer.Option(None, "--seed", help="Fix the question order (for demos and tests)."),
          corpus: list[Path] = typer.Option(None, "--corpus", "-c", help="Corpus file or folder instead of the configured one.")):
    """Run a mock interview in the terminal: questions, your answers, grades, a summary."""
    from rich.markup import escape

    from bot.reports.terminal import render_summary
    from bot.service import FOLLOW_UP, QUESTION, InterviewService

    s = common.settings(corpus)
    items = common.load_items(s)
    _keep_terminal()
    # The model loads in the background: the first question shows at once.
    service = InterviewService.open(s, items, background=True)
    me = profile or common.owner()
    if follow_ups is not None:
        service.follow_ups = follow_ups
    if review and new:
        raise UsageError("--review and --new exclude each other.")
    if resume:
        session = service.latest_active(me, "terminal")
        if session is None:
            raise NotFoundError("There is no unfinished session to resume.", "Start one with `interview start`.")
        asked = service.asking(session)
        if asked is None:
            where = "to grade its saved answers"
        elif asked.kind == FOLLOW_UP:
            where = f"at the follow-up on question {asked.number}"
        else:
            where = f"at question {asked.number} of {asked.total}"
        err.print(f"Resuming session {session.id} {where}.")
    else:
        session = service.start(me, mode="review" if review else "new" if new else "mix", topic=topic, count=count,
                                seed=seed, packs=pack or None, language=lang, difficulty=difficulty)

    try:
        for rec in service.ungraded(session):  # answers saved before a crash or a failed grading
            err.print(f"Grading your saved answer to: {rec.question}")
            _go_on(service, rec.source == FOLLOW_UP, service.go_on, rec)
        while (asked := service.asking(session)) is not None:
            session = asked.session
            if asked.kind == QUESTION:
                item = asked.item
                service.prepare(item)
                out.rule(f"Question {asked.number} of {asked.total}  [dim]{item.id} · "
                         f"{', '.join(item.tags)} · {item.difficulty}[/]")
                out.print(f"[bold]{escape(item.question)}[/]")
                err.print(END_HELP)
            else:  # a follow-up on what the last answer missed (kept in the session: --resume asks it again)
                out.print(f"[bold cyan]Follow-up:[/] {escape(asked.text)}")
                err.print("Answer it like a question ([bold]/skip[/] skips the follow-up).")
            text = read_answer()
            if text is None or text.strip() == "/quit":
                _leave(service, f"Stopped. Resume with `interview start --resume` (session {session.id}).", 0)
            if text.strip() == "/skip" or (asked.kind == FOLLOW_UP and not text.strip()):
                session = service.pass_on(session, to=asked.key)
                continue
            _go_on(service, asked.kind == FOLLOW_UP, service.answer, session, text, to=asked.key)  # saved before grading starts
    except KeyboardInterrupt:
        _leave(service, f"\nInterrupted. Every answer you submitted is saved; resume with "
                     f"`interview start --resume` (session {session.id}).", 130)
    session = service.wrap_up(session)  # stays open while answers wait for a grade (--resume)
    render_summary(service.summary(session), out)
    service.close()


@handle_errors
def grade(question: str = typer.Option(..., "--question", "-q", help="A corpus id (dl-006) or the question text."),
          answer: str = typer.Option(None, "--answer", "-a", help="The answer text ('-' reads stdin)."),
          answer_file: Path = typer.Option(None, "--answer-file", "-f", help="Read the answer from a file."),
          as_json: bool = typer.Option(False, "--json", help="Print only the grade as JSON."),
          corpus: list[Path] = typer.Option(None, "--corpus", "-c", help="Corpus file or folder instead of the configured one.")):
    """Grade one answer to one corpus question."""
    from bot.reports.terminal import render_grade
    from bot.service import InterviewService, resolve_question

    if (answer is None) == (answer_file is None):
        raise UsageError("Give exactly one of --answer and --answer-file.")
    if answer_file is not None:
        try:
            text = answer_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UsageError(f"--answer-file {answer_file} does not exist.") from None
        except UnicodeDecodeError:
            raise UsageError(f"--answer-file {answer_file} is not UTF-8 text.", "Save it as UTF-8.") from None
    else:
        text = common.read_stdin_if_dash(answer)
    s = common.settings(corpus)
    items = common.load_items(s)
    item, m = resolve_question(items, question, lambda: common.index(s, items), s.match_threshold)
    if m is not None:
        err.print(f"[dim]matched {item.id} (similarity {m.score:.3f}, confidence {m.confidence:.2f}): {item.question}[/]")
    service = InterviewService.open(s, items, llm=common.llm(s))
    with err.status("grading…", spinner="dots") as status:
        result = service.grade_text(item, text, "grade", stage=status.update)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        render_grade(result, out)
