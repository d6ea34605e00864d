"""`interview corpus ...`: validate corpus files."""
from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.common import err, handle_errors, out, settings

app = typer.Typer(help="Check and inspect the question corpus.", no_args_is_help=True)


@app.command("check")
@handle_errors
def check(paths: list[Path] = typer.Argument(None, help="Files or folders (default: the configured corpus).")):
    """Validate corpus files; print `file:line: what is wrong` for each problem."""
    from bot.corpus import check_files

    s = settings()
    parsed, problems = check_files(paths or s.corpus_paths)
    for p in problems:
        out.print(p, highlight=False, markup=False, soft_wrap=True)
    n_items = sum(len(cf.items) for cf in parsed)
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/] in {len(parsed)} file(s).")
        raise typer.Exit(1)
    out.print(f"OK: {n_items} items in {len(parsed)} file(s).")


@app.command("list")
@handle_errors
def list_items(paths: list[Path] = typer.Argument(None, help="Files or folders (default: the configured corpus).")):
    """List the questions with their ids, tags and difficulty."""
    from rich.table import Table

    from bot.corpus import load_items

    s = settings()
    items = load_items(paths or s.corpus_paths)
    t = Table("id", "question", "tags", "difficulty", "key points")
    for i in items:
        t.add_row(i.id, i.question, ", ".join(i.tags), i.difficulty, str(len(i.key_points)))
    out.print(t)
