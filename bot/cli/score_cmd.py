"""`interview score`: grade the answers in practice transcripts against the corpus.

Exit codes: 0 ok; 2 a file is not a usable transcript (empty, too big, undecodable, unknown format,
no questions) or a bad option; 1 another error (e.g. an answer could not be graded: it stays saved);
3 `--fail-under X` and the mean score of all graded answers is below X (or nothing was graded).
Errors win over 3. In a batch every file is tried; the exit code covers all of them.
"""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors, out
from bot.errors import InterviewError, UsageError

OUTPUT_FORMATS = {"terminal": "terminal", "table": "terminal", "md": "md", "markdown": "md",
                  "json": "json", "html": "html"}
SUFFIX = {"md": ".md", "json": ".json", "html": ".html", "terminal": ".txt"}


def _inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders expanded to the transcripts in them (by extension, sorted)."""
    from bot.transcripts.readers import EXTENSIONS

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in EXTENSIONS
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise UsageError(f"{p}: no transcripts in this folder.",
                                 f"Transcripts end in {', '.join(sorted(EXTENSIONS))}.")
            files.extend(found)
        else:
            files.append(p)  # a missing file is reported with the others, not here
    return files


def _write(text: str, path: Path | None) -> None:
    if path is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"Could not write {path}: {e.strerror}.", "Pick a writable --out path.") from None
    err.print(f"[dim]wrote {path}[/]", highlight=False)


def _render(report, fmt: str) -> str:
    if fmt == "md":
        from bot.reports.markdown import render_markdown
        return render_markdown(report)
    if fmt == "html":
        from bot.reports.html import render_html
        return render_html(report)
    if fmt == "json":
        from bot.reports.json_report import render_json
        return render_json(report)
    import io

    from rich.console import Console

    from bot.reports.transcript_terminal import render_report
    console = Console(width=140, record=True, file=io.StringIO(), color_system=None)
    render_report(report, console)
    return console.export_text()


@handle_errors
def score(paths: list[Path] = typer.Argument(..., help="Transcript files or folders (md, txt, vtt, srt, json)."),
          fmt: str = typer.Option("terminal", "--format", "-f", help="terminal, md, json or html."),
          as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
          out_path: Path = typer.Option(None, "--out", "-o",
                                        help="Write the report here (a folder when several files give md/html)."),
          input_format: str = typer.Option(None, "--input-format",
                                           help="text, vtt, srt, otter or json (default: detected)."),
          interviewer: str = typer.Option(None, "--interviewer", help="The interviewer's speaker name."),
          skip_unmatched: bool = typer.Option(False, "--skip-unmatched",
                                              help="Skip questions not in the corpus instead of grading them without a reference."),
          fail_under: float = typer.Option(None, "--fail-under", help="Exit 3 if the mean score is below this (0-10)."),
          threshold: float = typer.Option(None, "--threshold",
                                          help="Match confidence (0-1) a question needs to count as a corpus question (default: match_threshold)."),
          corpus: list[Path] = typer.Option(None, "--corpus", "-c", help="Corpus file or folder instead of the configured one.")):
    """Score practice transcripts: match each interviewer question to the corpus and grade the answer."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from bot.reports.json_report import render_json_batch
    from bot.service import InterviewService
    from bot.transcripts.readers import normalize_format, read_path, read_turns

    key = "json" if as_json else fmt.strip().lower()
    if as_json and fmt not in ("terminal", "json"):
        raise UsageError(f"--json and --format {fmt} disagree.", "Use one of them.")
    if key not in OUTPUT_FORMATS:
        raise UsageError(f"Unknown --format {fmt!r}.", "Use terminal, md, json or html.")
    fmt = OUTPUT_FORMATS[key]
    if input_format:
        input_format = normalize_format(input_format)
    if threshold is not None and not 0 < threshold <= 1:
        raise UsageError(f"--threshold {threshold} is not a similarity.", "Use a number between 0 and 1, e.g. 0.87.")
    if fail_under is not None and not 0 <= fail_under <= 10:
        raise UsageError(f"--fail-under {fail_under} is outside 0-10.", "Scores are 0-10.")

    files = _inputs(list(paths))
    batch = len(files) > 1 or any(p.is_dir() for p in paths)
    if batch and out_path is not None and fmt in ("md", "html", "terminal") and out_path.suffix:
        raise UsageError(f"--out {out_path}: several reports need a folder.", "Pass a folder, e.g. --out reports/.")
    if batch and out_path is None and fmt == "html":
        raise UsageError("Several HTML reports cannot go to the terminal.", "Add --out FOLDER.")

    # Read and parse every file first (cheap): bad files are reported without loading the model.
    texts: list[tuple[Path, str]] = []
    errors: list[dict] = []

    def failed(path: Path, e: InterviewError) -> None:
        errors.append({"source": str(path), "error": e.message, "hint": e.hint, "exit_code": e.exit_code})
        # soft_wrap: a long path must stay on one line, copyable and greppable
        err.print(f"[bold red]Error:[/] {escape(e.message)}", highlight=False, soft_wrap=True)
        if e.hint:
            err.print(f"[bold]Fix:[/] {escape(e.hint)}", highlight=False, soft_wrap=True)

    for f in files:
        try:
            text = read_path(f)
            read_turns(text, str(f), input_format)
            texts.append((f, text))
        except InterviewError as e:
            failed(f, e)

    reports = []
    if texts:
        s = common.settings(corpus)
        items = common.load_items(s)
        index = common.index(s, items)
        service = InterviewService.open(s, items, llm=common.llm(s))
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:
            for f, text in texts:
                task = bar.add_task(f"grading {f.name}", total=None)

                def progress(done: int, total: int, task=task, name=f.name) -> None:
                    bar.update(task, completed=done, total=total)
                    # Piped or logged (no live bar): a plain line at each tenth, on stderr.
                    if not err.is_terminal and total and (done == total or done % max(1, total // 10) == 0):
                        err.print(f"grading {name}: {done}/{total} answers", highlight=False)

                try:
                    report = service.score_transcript(text, str(f), index=index, interviewer=interviewer,
                                                      input_format=input_format, skip_unmatched=skip_unmatched,
                                                      progress=progress, threshold=threshold)
                except InterviewError as e:
                    failed(f, e)
                    continue
                except KeyboardInterrupt:
                    err.print("\nInterrupted. The answers read so far are saved; run the command again: "
                              "graded answers come from the cache.")
                    service.close()
                    raise typer.Exit(130) from None
                finally:
                    bar.remove_task(task)
                reports.append(report)
                if fmt == "terminal" and out_path is None:
                    from bot.reports.transcript_terminal import render_report
                    render_report(report, out)

    # Output
    if fmt == "json":
        if batch:
            _write(render_json_batch(reports, errors) + "\n", out_path)
        elif reports:
            _write(_render(reports[0], "json") + "\n", out_path)
    elif out_path is not None and reports:
        if batch:
            for r in reports:
                _write(_render(r, fmt), out_path / (Path(r.source).stem + SUFFIX[fmt]))
        else:
            _write(_render(reports[0], fmt), out_path)
    elif fmt in ("md", "html") and reports:  # several html reports were refused above
        _write("\n---\n\n".join(_render(r, fmt) for r in reports), None)

    graded = [i.overall for r in reports for i in r.items if i.overall is not None]
    mean = round(sum(graded) / len(graded), 1) if graded else None
    if batch and fmt == "terminal" and reports:
        out.print(f"[bold]Mean over {len(reports)} file(s), {len(graded)} answer(s): "
                  f"{mean if mean is not None else '–'}[/]")
    item_errors = sum(r.errors for r in reports)
    if item_errors:
        err.print(f"[yellow]{item_errors} answer(s) could not be graded; they are saved, re-run to grade them.[/]")
    if errors or item_errors:
        raise typer.Exit(2 if any(e["exit_code"] == 2 for e in errors) else 1)
    if fail_under is not None and (mean is None or mean < fail_under):
        err.print(f"[red]Mean score {mean if mean is not None else '–'} is below --fail-under {fail_under}.[/]")
        raise typer.Exit(3)
