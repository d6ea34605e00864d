"""Rich table of a scored transcript for the terminal (`interview score`, default format)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.reports.terminal import score_style


def render_report(report, console: Console) -> None:
    r = report
    t = Table(title=f"{r.source}  ·  interviewer: {r.interviewer}", title_justify="left", show_lines=False)
    t.add_column("#", justify="right")
    t.add_column("Question", ratio=3)
    t.add_column("Corpus match", ratio=2)
    t.add_column("Score", justify="right")
    t.add_column("Top missing point", ratio=2)
    for it in r.items:
        if it.matched:
            match = Text.assemble((it.question_id or "", "bold"), f" {it.corpus_question or ''}",
                                  (f" ({it.match_score:.2f})", "dim"))
        else:
            match = Text.assemble(("not in corpus", "yellow"), (f" (closest {it.closest_id} {it.match_score:.2f})", "dim"))
        if it.status == "graded":
            score = Text(f"{it.overall:.1f}", style=score_style(it.overall))
        else:
            score = Text(it.status, style="red" if it.status == "error" else "dim")
        t.add_row(str(it.n), it.question, match, score, it.top_missing or (it.error or ""))
    console.print(t)
    head = Text.assemble(("Overall ", "bold"),
                         (f"{r.overall:.1f}/10" if r.overall is not None else "–", f"bold {score_style(r.overall)}"))
    if r.unmatched and r.overall_matched is not None:
        head.append(f"   corpus questions only: {r.overall_matched:.1f}", style="dim")
    console.print(head)
    notes = [f"{r.graded} of {len(r.items)} graded"]
    if r.unmatched:
        notes.append(f"{r.unmatched} not in corpus" + (" (skipped)" if r.skipped else " (graded without a reference)"))
    if r.small_talk:
        notes.append(f"{r.small_talk} small-talk turns ignored")
    if r.errors:
        notes.append(f"{r.errors} not graded (answers saved; re-run to grade them)")
    console.print(Text(" · ".join(notes), style="dim"))
