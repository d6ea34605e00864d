"""Rich rendering of grades and session summaries for the terminal."""
from __future__ import annotations

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.grading.result import CONTRADICTED, COVERED, PARTIAL, Grade
from bot.grading.signals import criterion

MARK = {COVERED: ("✔", "green"), PARTIAL: ("◐", "yellow"), CONTRADICTED: ("✗", "bold red")}


def score_style(score: float | None) -> str:
    if score is None:
        return "dim"
    return "green" if score >= 7 else "yellow" if score >= 4 else "red"


def render_grade(grade: Grade, console: Console, *, show_reference: bool = True) -> None:
    console.print(grade_panel(grade))
    if show_reference and grade.reference_answer:
        console.print(reference_panel(grade))


def reference_panel(grade: Grade) -> Panel:
    return Panel(Markdown(grade.reference_answer), title="Reference answer", border_style="dim")


def grade_panel(grade: Grade, *, pending: str = "") -> Panel:
    """The grade as a panel; `pending` says what is still coming (the model's corrections)."""
    top = sorted(grade.criteria, key=lambda c: -c.weight)[:4]  # the signals that weigh most
    head = Text.assemble(("Score ", "bold"), (f"{grade.overall:.1f}/10", f"bold {score_style(grade.overall)}"),
                         ("  ·  " + "  ".join(criterion(c) for c in top), "dim"))
    parts: list = [head]
    if grade.feedback.get("reason"):
        parts.append(Text(grade.feedback["reason"], style="red"))
    if grade.feedback.get("warning"):
        parts.append(Text("⚠ " + grade.feedback["warning"], style="yellow"))
    if grade.feedback.get("note"):
        parts.append(Text(grade.feedback["note"], style="dim yellow"))
    kp = Table.grid(padding=(0, 1))
    for p in grade.key_points:
        sym, style = MARK.get(p.status, ("✘", "red"))
        line = Text(p.point)
        if p.evidence:
            said = "you said: " if p.status == CONTRADICTED else ""
            line.append(f"\n  {said}“{p.evidence}”", style="italic red" if said else "italic dim")
        kp.add_row(Text(sym, style=style), line)
    parts += [Text("\nKey points", style="bold"), kp]
    if grade.wrong_claims:
        parts.append(Text("\nWrong claims", style="bold red"))
        for w in grade.wrong_claims:
            parts.append(Text.assemble(("✘ ", "red"), (w.claim, ""), ("\n  → ", "dim"), (w.correction, "green")))
    fb = grade.feedback
    if fb.get("strengths"):
        parts += [Text("\nGood", style="bold green"), Text(fb["strengths"])]
    if fb.get("next_step"):
        parts += [Text("\nNext step", style="bold cyan"), Text(fb["next_step"])]
    if pending:
        parts.append(Text(f"\n… {pending}", style="dim italic"))
    by = "the key-point judge" if grade.model == "none" else grade.model
    return Panel(Group(*parts), title=f"[bold]{grade.question_id}[/] graded by {by}",
                 subtitle=f"{grade.latency_ms / 1000:.1f} s", border_style=score_style(grade.overall))


def render_summary(summary: dict, console: Console) -> None:
    t = Table(title=f"Session {summary['session_id']}: mean "
                    f"{summary['mean'] if summary['mean'] is not None else '-'} / 10")
    t.add_column("#", justify="right")
    t.add_column("Question")
    t.add_column("Score", justify="right")
    t.add_column("Top missing point")
    for n, it in enumerate(summary["items"], 1):
        score = "skipped" if it["status"] == "skipped" else (
            f"{it['overall']:.1f}" if it["overall"] is not None else f"[red]{it['status']}[/]")
        t.add_row(str(n), it["question"], Text.from_markup(score, style=score_style(it["overall"])),
                  Text((it["missing"] or [""])[0]))
    console.print(t)
    if summary["ungraded"]:
        console.print(f"[yellow]{summary['ungraded']} answer(s) are saved but not graded yet; "
                      "run `interview start --resume` to grade them.[/]")
