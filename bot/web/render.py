"""What the templates need beyond Jinja2: a grade's evidence marked in the candidate's answer, and
the report's symbols and colours (bot.reports.html), so the pages look like the HTML reports."""
from __future__ import annotations

import re
from html import escape

from markupsafe import Markup

from bot.reports.html import _cls

# status -> symbol, css class, words (for a screen reader and a tooltip); anything else is missed
STATUS = {"covered": ("✔", "ok", "covered"), "partial": ("◐", "mid", "partly covered"),
          "missing": ("✘", "bad", "missing"), "contradicted": ("✗", "bad", "contradicted")}


def status(st: str) -> tuple[str, str, str]:
    return STATUS.get(st, STATUS["missing"])


def score_class(score: float | None) -> str:
    return _cls(score)


def _find(answer: str, evidence: str) -> tuple[int, int] | None:
    """Where the evidence stands in the answer. The grader keeps only evidence it found in the
    answer, but may have normalised spaces or case: match on words, any whitespace between."""
    words = evidence.split()
    if not words:
        return None
    m = re.search(r"\s+".join(map(re.escape, words)), answer, re.IGNORECASE)
    return (m.start(), m.end()) if m else None


def highlight(answer: str, key_points) -> Markup:
    """The answer, escaped, with each key point's evidence in a <mark> numbered like the point.
    Overlapping evidence keeps the first point's mark."""
    spans = []
    for n, kp in enumerate(key_points, 1):
        where = _find(answer, kp.evidence or "")
        if where:
            spans.append((where[0], where[1], n, kp))
    spans.sort(key=lambda s: (s[0], s[2]))
    out, at = [], 0
    for start, end, n, kp in spans:
        if start < at:
            continue
        sym, cls, words = status(kp.status)
        out.append(escape(answer[at:start]))
        out.append(f'<mark class="ev {cls}" title="key point {n}: {words}">{escape(answer[start:end])}'
                   f'<sup aria-label="key point {n}">{n}</sup></mark>')
        at = end
    out.append(escape(answer[at:]))
    return Markup("".join(out))
