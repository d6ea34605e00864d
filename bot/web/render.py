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
    Evidence may overlap (a sentence quoted for one point holds the clause quoted for another):
    the answer is cut where any evidence starts or ends, each piece inside evidence is marked (its
    colour from the lowest-numbered point in it), and a point's number stands where its evidence
    ends, so every quoted point is found in the answer."""
    spans = []
    for n, kp in enumerate(key_points, 1):
        where = _find(answer, kp.evidence or "")
        if where:
            spans.append((where[0], where[1], n, kp))
    cuts = sorted({0, len(answer), *(a for a, _, _, _ in spans), *(b for _, b, _, _ in spans)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        inside = [sp for sp in spans if sp[0] <= a and b <= sp[1]]
        if not inside:
            out.append(escape(answer[a:b]))
            continue
        _, cls, _ = status(inside[0][3].status)
        title = "; ".join(f"key point {n}: {status(kp.status)[2]}" for _, _, n, kp in inside)
        ends = "".join(f'<sup aria-label="key point {n}">{n}</sup>' for _, e, n, _ in inside if e == b)
        out.append(f'<mark class="ev {cls}" title="{title}">{escape(answer[a:b])}{ends}</mark>')
    return Markup("".join(out))
