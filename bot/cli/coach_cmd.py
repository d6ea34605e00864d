"""`interview history`, `interview progress`, `interview export` and `interview import`: what the
coach knows about a person, and moving it to another machine."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors, out

PROFILE = typer.Option(None, "--profile", help="Whose history (default: your user name).")


def _service(items: bool = True):
    """The service over the history, without a model (these commands grade nothing). `items`:
    whether the corpus is read; a history moves as it is without it, even under a broken corpus."""
    from bot.service import InterviewService

    s = common.settings()
    return InterviewService.open(s, common.load_items(s) if items else [], llm=None)


@handle_errors
def history(profile: str = PROFILE, limit: int = typer.Option(20, "--limit", "-n"),
            as_json: bool = typer.Option(False, "--json", help="Print JSON only.")):
    """Your sessions: date, questions, mean score, items."""
    from rich.table import Table

    rows = _service().coach.history(profile or common.owner(), limit=limit)
    if as_json:
        print(json.dumps({"sessions": rows}, ensure_ascii=False, indent=2))
        return
    if not rows:
        out.print("No sessions yet. Start one with `interview start`.")
        return
    t = Table("session", "date", "status", "answered", "mean", "items")
    for r in rows:
        t.add_row(str(r["session"]), r["date"][:16].replace("T", " "), r["status"], f"{r['answered']}/{r['questions']}",
                  "-" if r["mean"] is None else f"{r['mean']:.1f}",
                  ", ".join(f"{i['id']} {i['overall']:.1f}" if i["overall"] is not None else f"{i['id']} ({i['status']})"
                            for i in r["items"]))
    out.print(t)


@handle_errors
def progress(profile: str = PROFILE, as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
             html: Path = typer.Option(None, "--html", help="Also write a self-contained HTML page with charts.")):
    """Your progress: score per topic over time, the key points you miss most, what is due, your streak."""
    from rich.markup import escape
    from rich.table import Table

    p = _service().coach.progress(profile or common.owner())
    if html is not None:
        from bot.reports.progress_html import render_progress

        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_progress(p), encoding="utf-8")
        err.print(f"Wrote {html}")
    if as_json:
        print(json.dumps(p, ensure_ascii=False, indent=2))
        return
    out.print(f"[bold]{escape(p['owner'])}[/]: {p['answers']} graded answers, {p['items_seen']} questions seen, "
              f"streak {p['streak_days']} day(s); due now: {len(p['due_now'])}.")
    if p["topics"]:
        t = Table("topic", "answers", "mean", "recent scores")
        for name, row in sorted(p["topics"].items(), key=lambda x: x[1]["mean"]):
            t.add_row(escape(name), str(row["answers"]), f"{row['mean']:.1f}",
                      " ".join(f"{x['overall']:.0f}" for x in row["trend"]))
        out.print(t)
    if p["most_missed"]:
        out.print("[bold]Key points you miss most[/]")
        for m in p["most_missed"]:
            out.print(f"  {m['missed']}× {escape(m['item_id'])}: {escape(m['point'])} [dim](latest: {m['latest']})[/]")
    if p["due_next"]:
        out.print("Next due: " + ", ".join(f"{d['item_id']} {d['due'][:16].replace('T', ' ')}" for d in p["due_next"][:5]))


@handle_errors
def export(profile: str = PROFILE, out_path: Path = typer.Option(None, "--out", "-o", help="Write here instead of stdout.")):
    """Your history as JSONL (sessions with their answers and grades, and your review schedule)."""
    lines = _service(items=False).export_history(profile or common.owner())
    text = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines)
    if out_path:
        out_path.write_text(text, encoding="utf-8")
        err.print(f"Wrote {len(lines)} records to {out_path}")
    else:
        print(text, end="")


@handle_errors
def import_history(path: Path = typer.Argument(..., help="A file written by `interview export`."),
                   profile: str = typer.Option(None, "--profile", help="Import as this person (default: as exported).")):
    """Add an exported history to this machine's (sessions already here are skipped)."""
    added, skipped = _service(items=False).import_history(path, profile)
    out.print(f"Imported {added} session(s); {skipped} already here.")
