"""Markdown report of a scored transcript (`interview score --format md`)."""
from __future__ import annotations

from bot.grading.result import CONTRADICTED, COVERED, PARTIAL

MARK = {COVERED: "✅", PARTIAL: "◐", CONTRADICTED: "⛔"}


def _cell(text: str | None, limit: int = 80) -> str:
    """One table cell: a single line, pipes escaped, long text cut."""
    t = " ".join((text or "").split()).replace("|", "\\|")
    return t if len(t) <= limit else t[: limit - 1] + "…"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in (text.strip() or "(no answer)").splitlines())


def _score(x: float | None) -> str:
    return f"{x:.1f}" if x is not None else "–"


def render_markdown(report) -> str:
    r = report
    out = [f"# Transcript score: {r.source}", ""]
    out.append(f"**Overall: {_score(r.overall)} / 10**"
               + (f" (corpus questions only: {_score(r.overall_matched)})" if r.unmatched and r.overall_matched is not None else ""))
    out += ["", f"{len(r.items)} questions · {r.graded} graded · {r.unmatched} not in corpus · "
                f"{r.skipped} skipped · {r.errors} errors · interviewer: {r.interviewer} · format: {r.format}", ""]
    out += ["| # | Question | Corpus match | Score | Top missing point |", "|---|---|---|---|---|"]
    for it in r.items:
        match = f"{it.question_id} ({it.match_score:.2f})" if it.matched else "not in corpus"
        score = _score(it.overall) if it.status == "graded" else it.status
        out.append(f"| {it.n} | {_cell(it.question)} | {match} | {score} | {_cell(it.top_missing, 60)} |")
    for it in r.items:
        out += ["", f"## {it.n}. {it.question}", ""]
        if it.matched:
            out.append(f"Corpus: **{it.question_id}** {it.corpus_question} (similarity {it.match_score:.2f}) · line {it.line}")
        else:
            out.append(f"**Not in corpus** (closest: {it.closest_id or '–'}, similarity {it.match_score:.2f}) · "
                       "graded without a reference, on generic key points" if it.status != "skipped"
                       else f"**Not in corpus**, skipped (--skip-unmatched) · line {it.line}")
        out += ["", "**Answer**", "", _quote(it.answer)]
        if it.status == "error":
            out += ["", f"**Not graded:** {it.error}"]
        g = it.grade if it.status == "graded" else None
        if g is None:
            continue
        out += ["", f"**Score: {g.overall:.1f} / 10** · " + " · ".join(f"{c.name} {c.score:.0f}" for c in g.criteria)]
        if g.feedback.get("reason"):
            out += ["", f"⚠ {g.feedback['reason']}"]
        if g.feedback.get("warning"):
            out += ["", f"⚠ {g.feedback['warning']}"]
        out += ["", "**Key points**", ""]
        for k in g.key_points:
            line = f"- {MARK.get(k.status, '❌')} {k.point}"
            if k.evidence:
                line += f" — “{k.evidence}”"
            out.append(line)
        if g.wrong_claims:
            out += ["", "**Wrong claims**", ""]
            out += [f"- ❌ “{w.claim}” → {w.correction}" for w in g.wrong_claims]
        if g.feedback.get("strengths"):
            out += ["", f"**Good:** {g.feedback['strengths']}"]
        if g.feedback.get("next_step"):
            out += ["", f"**Next step:** {g.feedback['next_step']}"]
        if it.matched and g.reference_answer:
            out += ["", "<details><summary>Reference answer</summary>", "", g.reference_answer.strip(), "", "</details>"]
    return "\n".join(out).rstrip() + "\n"
