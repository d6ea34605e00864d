"""`interview progress --html`: one self-contained page (inline SVG, no script, no network)."""
from __future__ import annotations

import html


def _spark(points: list[float], w: int = 240, h: int = 48) -> str:
    if not points:
        return ""
    n = len(points)
    xs = [8 + (w - 16) * (i / (n - 1) if n > 1 else 0.5) for i in range(n)]
    ys = [h - 6 - (h - 12) * max(0.0, min(10.0, p)) / 10 for p in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    dots = "".join(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='3'/>" for x, y in zip(xs, ys))
    return (f"<svg class='chart' width='{w}' height='{h}' viewBox='0 0 {w} {h}' role='img' "
            f"aria-label='scores over time'><polyline fill='none' stroke='#2563eb' stroke-width='2' "
            f"points='{path}'/><g fill='#2563eb'>{dots}</g></svg>")


def render_progress(p: dict) -> str:
    e = html.escape
    topics = "".join(f"<tr><td>{e(t)}</td><td>{r['answers']}</td><td>{r['mean']:.1f}</td>"
                     f"<td>{_spark([x['overall'] for x in r['trend']])}</td></tr>"
                     for t, r in sorted(p["topics"].items(), key=lambda x: x[1]["mean"]))
    missed = "".join(f"<li>{m['missed']}× <b>{e(m['item_id'])}</b>: {e(m['point'])} "
                     f"<small>(latest: {e(m['latest'])})</small></li>" for m in p["most_missed"])
    due = "".join(f"<li>{e(d['item_id'])} — {e(d['due'][:16].replace('T', ' '))} UTC</li>" for d in p["due_next"])
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Interview practice progress</title><style>"
            "body{font:15px/1.5 system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem}"
            "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}"
            "small{color:#666}</style></head><body>"
            f"<h1>Progress of {e(p['owner'])}</h1><p>{p['answers']} graded answers · {p['items_seen']} questions seen · "
            f"streak {p['streak_days']} day(s) · due now: {len(p['due_now'])}</p>"
            f"<h2>Score per topic</h2><table><tr><th>topic</th><th>answers</th><th>mean</th><th>over time</th></tr>"
            f"{topics}</table><h2>Key points missed most</h2><ul>{missed or '<li>none yet</li>'}</ul>"
            f"<h2>Due next</h2><ul>{due or '<li>nothing scheduled</li>'}</ul></body></html>")
