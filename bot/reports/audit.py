"""The audit report as Markdown (terminal, PR comments) and as one self-contained HTML page."""
from __future__ import annotations

import html
from itertools import groupby

CHECKS = {"format": "format", "support": "key point not in the reference", "factcheck": "doubtful statement",
          "duplicate": "near-duplicate question", "repeated": "repeated key point", "fields": "missing field"}


def _table(report) -> list[tuple]:
    return [(p, c["items"], c["errors"], c["warnings"]) for p, c in sorted(report.counts().items())]


def render_markdown(report) -> str:
    lines = [f"# Question bank audit ({report.model})", "",
             f"{len(report.errors)} error(s), {len(report.warnings)} warning(s).", "",
             "| pack | items | errors | warnings |", "|---|---:|---:|---:|"]
    lines += [f"| {p} | {n} | {e} | {w} |" for p, n, e, w in _table(report)]
    key = lambda f: (f.pack, f.item)  # noqa: E731
    for (pack, item), group in groupby(sorted(report.findings, key=key), key=key):
        lines += ["", f"## {pack}/{item}" if item else f"## {pack}"]
        for f in group:
            lines.append(f"- **{f.level}** ({CHECKS.get(f.check, f.check)}): {f.message}"
                         + (f"  \n  `{f.source}`" if f.source else ""))
    return "\n".join(lines)


def render_html(report) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(p)}</td><td>{n}</td><td class='{'bad' if er else ''}'>{er}</td><td>{w}</td></tr>"
                   for p, n, er, w in _table(report))
    items = "".join(f"<li class='{f.level}'><b>{e(f.level)}</b> · {e(f.pack)}/{e(f.item)} · "
                    f"{e(CHECKS.get(f.check, f.check))}: {e(f.message)} <small>{e(f.source)}</small></li>"
                    for f in sorted(report.findings, key=lambda f: (f.level != "error", f.pack, f.item)))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Question bank audit</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .6rem}.bad{color:#b00}"
            "li.error{color:#b00}small{color:#777}</style></head><body>"
            f"<h1>Question bank audit</h1><p>Model: {e(report.model)}. {len(report.errors)} error(s), "
            f"{len(report.warnings)} warning(s).</p><table><tr><th>pack</th><th>items</th><th>errors</th>"
            f"<th>warnings</th></tr>{rows}</table><ul>{items}</ul></body></html>")
