"""HTML report of a scored transcript (`interview score --format html`): one self-contained file,
inline CSS and an inline SVG bar chart, no scripts, no fonts or CDNs, so it opens offline and can be
mailed or attached as is. Every text from the transcript, the corpus or the model is escaped."""
from __future__ import annotations

from html import escape

from bot.grading.result import CONTRADICTED, COVERED, PARTIAL
from bot.grading.signals import criterion

CSS = """
:root { --ok: #1a7f37; --mid: #b7791f; --bad: #c53030; --dim: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
       color: #111827; background: #f9fafb; margin: 0; padding: 24px; }
main { max-width: 960px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 0 0 8px; }
.meta { color: var(--dim); font-size: 13px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 20px; margin: 16px 0; }
.overall { display: flex; align-items: center; gap: 24px; }
.big { font-size: 44px; font-weight: 700; line-height: 1; }
.ok { color: var(--ok); } .mid { color: var(--mid); } .bad { color: var(--bad); } .na { color: var(--dim); }
.badge { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 999px; border: 1px solid currentColor; }
.answer { white-space: pre-wrap; background: #f3f4f6; border-left: 3px solid #d1d5db; padding: 8px 12px; margin: 8px 0; }
.ref { white-space: pre-wrap; font-size: 14px; }
table.kp { border-collapse: collapse; width: 100%; margin: 6px 0; }
table.kp td { border-top: 1px solid var(--line); padding: 5px 6px; vertical-align: top; }
td.st { width: 28px; text-align: center; font-weight: 700; }
.ev { color: #374151; font-style: italic; }
.wrong li { margin: 4px 0; } .fix { color: var(--ok); }
details summary { cursor: pointer; color: #1d4ed8; }
.criteria span { margin-right: 14px; color: var(--dim); font-size: 13px; display: inline-block; white-space: nowrap; }
"""
STATUS = {COVERED: ("✔", "ok", "covered"), PARTIAL: ("◐", "mid", "partly covered"),
          CONTRADICTED: ("✗", "bad", "contradicted")}


def _cls(score: float | None) -> str:
    if score is None:
        return "na"
    return "ok" if score >= 7 else "mid" if score >= 4 else "bad"


def _color(score: float | None) -> str:
    return {"ok": "#1a7f37", "mid": "#d69e2e", "bad": "#c53030", "na": "#9ca3af"}[_cls(score)]


def bar_chart(items) -> str:
    """Horizontal bars, one per question, 0-10 scale; unmatched questions get a dashed outline."""
    row, left, width = 26, 46, 520
    height = row * len(items) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Score per question" '
             f'viewBox="0 0 {left + width + 150} {height}" width="100%" style="max-width:{left + width + 150}px">']
    for tick in range(0, 11, 2):
        x = left + width * tick / 10
        parts.append(f'<line x1="{x}" y1="0" x2="{x}" y2="{height - 20}" stroke="#e5e7eb"/>'
                     f'<text x="{x}" y="{height - 6}" font-size="11" text-anchor="middle" fill="#6b7280">{tick}</text>')
    for k, it in enumerate(items):
        y = k * row + 4
        score = it.overall
        parts.append(f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end" fill="#374151">Q{it.n}</text>')
        if score is not None:
            w = max(2.0, width * score / 10)
            dash = '' if it.matched else ' stroke="#374151" stroke-dasharray="4 3" fill-opacity="0.55"'
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 8}" rx="3" fill="{_color(score)}"{dash}>'
                         f'<title>Q{it.n}: {score:.1f}</title></rect>')
            label = f"{score:.1f}" + ("" if it.matched else " · not in corpus")
            parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}" font-size="12" fill="#111827">{escape(label)}</text>')
        else:
            parts.append(f'<text x="{left + 4}" y="{y + 14}" font-size="12" fill="#6b7280">{escape(it.status)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _item(it) -> str:
    e = escape
    g = it.grade if it.status == "graded" else None
    score = f'<span class="big {_cls(it.overall)}" style="font-size:28px">{it.overall:.1f}</span>' if g else \
        f'<span class="badge na">{e(it.status)}</span>'
    if it.matched:
        match = (f'<span class="badge ok">{e(it.question_id)}</span> {e(it.corpus_question or "")} '
                 f'<span class="meta">similarity {it.match_score:.2f}</span>')
    else:
        note = ("skipped (--skip-unmatched)" if it.status == "skipped"
                else "graded without a reference answer, on generic key points")
        match = (f'<span class="badge mid">not in corpus</span> <span class="meta">{note}; closest '
                 f'{e(it.closest_id or "–")} at {it.match_score:.2f}</span>')
    h = [f'<section class="card" id="q{it.n}"><div class="overall" style="justify-content:space-between">'
         f'<h2>{it.n}. {e(it.question)}</h2>{score}</div>',
         f'<div>{match} <span class="meta">· line {it.line}</span></div>',
         f'<div class="answer">{e(it.answer.strip() or "(no answer)")}</div>']
    if it.status == "error":
        h.append(f'<p class="bad">Not graded: {e(it.error or "")}</p>')
    if g:
        h.append('<div class="criteria">' + "".join(f"<span>{e(criterion(c))}</span>" for c in g.criteria) + "</div>")
        for key in ("reason", "warning"):
            if g.feedback.get(key):
                h.append(f'<p class="bad">⚠ {e(g.feedback[key])}</p>')
        rows = []
        for k in g.key_points:
            sym, cls, label = STATUS.get(k.status, ("✘", "bad", "missed"))
            ev = f'<div class="ev">“{e(k.evidence)}”</div>' if k.evidence else ""
            rows.append(f'<tr><td class="st {cls}" title="{label}">{sym}</td><td>{e(k.point)}{ev}</td></tr>')
        h.append('<h3 style="font-size:14px;margin:10px 0 0">Key points</h3><table class="kp">' + "".join(rows) + "</table>")
        if g.wrong_claims:
            h.append('<h3 style="font-size:14px;margin:10px 0 0" class="bad">Wrong claims</h3><ul class="wrong">'
                     + "".join(f'<li>“{e(w.claim)}” <span class="fix">→ {e(w.correction)}</span></li>'
                               for w in g.wrong_claims) + "</ul>")
        if g.feedback.get("strengths"):
            h.append(f'<p><b class="ok">Good:</b> {e(g.feedback["strengths"])}</p>')
        if g.feedback.get("next_step"):
            h.append(f'<p><b>Next step:</b> {e(g.feedback["next_step"])}</p>')
        if it.matched and g.reference_answer:
            h.append(f'<details><summary>Reference answer</summary><div class="ref">{e(g.reference_answer.strip())}</div></details>')
    h.append("</section>")
    return "\n".join(h)


def render_html(report) -> str:
    r, e = report, escape
    overall = f"{r.overall:.1f}" if r.overall is not None else "–"
    sub = (f"corpus questions only: {r.overall_matched:.1f}" if r.unmatched and r.overall_matched is not None else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Transcript score: {e(r.source)}</title><style>{CSS}</style></head>
<body><main>
<h1>Transcript score</h1><div class="meta">{e(r.source)} · format {e(r.format)} · interviewer {e(r.interviewer)}</div>
<section class="card overall"><div><div class="big {_cls(r.overall)}">{overall}<span style="font-size:18px" class="na"> / 10</span></div>
<div class="meta">{e(sub)}</div></div>
<div class="meta">{len(r.items)} questions · {r.graded} graded · {r.unmatched} not in corpus · {r.skipped} skipped ·
{r.errors} errors · {r.small_talk} small-talk turns ignored · match threshold {r.threshold:.2f}</div></section>
<section class="card"><h2>Score per question</h2>{bar_chart(r.items)}</section>
{"".join(_item(it) for it in r.items)}
</main></body></html>
"""
