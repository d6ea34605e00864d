"""The evaluation report: one dict (report.json), rendered as Markdown and as a self-contained HTML
page with an inline SVG scatter plot of human vs predicted scores (no scripts, fonts or CDNs)."""
from __future__ import annotations

import hashlib
import json
from html import escape
from pathlib import Path

import numpy as np

from bot.evaluation import calibration as calib
from bot.evaluation import verdict_fit
from bot.evaluation import metrics
from bot.evaluation.runner import FAILED, OK

# Published results on Mohler's data (see ../shared/benchmarks/README.md): context, not targets.
ANCHORS = {"mohler": [("human vs human", 0.59, 1.31), ("Mohler et al. 2011, BOW SVR", 0.43, 1.00),
                      ("Sultan et al. 2016", 0.592, 0.887), ("BERT cosine similarity", 0.32, 1.06)]}
METRIC_ROWS = [("pearson", "Pearson r"), ("spearman", "Spearman ρ"), ("qwk", "Quadratic weighted κ"),
               ("rmse", "RMSE"), ("mae", "MAE"), ("exact", "Exact agreement"),
               ("within_one_step", "Within ±1 step"), ("band_agreement", "Same band"),
               ("human_mean", "Mean human score"), ("predicted_mean", "Mean predicted score")]
MAX_FAILURES_LISTED = 50


def build(dataset: dict, meta: dict, records: list[dict], calibration=None, calibration_note: str = "",
          key_point_stats: dict | None = None, run_dir: Path | None = None,
          key_point_verdicts: dict | None = None) -> dict:
    """dataset: Dataset.describe(); records: the runner's, one per row; calibration: a weights entry
    to apply, or None for the raw overall scaled to the data set."""
    scale, step = dataset["scale_max"], dataset["step"]
    ok = [r for r in records if r.get("status") == OK]
    failed = [r for r in records if r.get("status") == FAILED]
    human = [r["human"] for r in ok]
    raw = [round(r["overall"] / 10 * scale, 3) for r in ok]
    cal = [round(calibration.predict(calib.record_features(r)) * scale, 3) for r in ok] if calibration else None
    pred = cal if cal is not None else raw
    lat = np.array([r["latency_ms"] for r in ok], float)
    right, pairs = verdict_fit.order_pairs(human, pred, [r["question_id"] for r in ok])
    by_q: dict[str, list[int]] = {}
    for i, r in enumerate(ok):
        by_q.setdefault(r["question_id"], []).append(i)
    per_question = []
    for qid, idx in by_q.items():
        h, p = [human[i] for i in idx], [pred[i] for i in idx]
        per_question.append({"question_id": qid, "n": len(idx), "human_mean": round(float(np.mean(h)), 3),
                             "predicted_mean": round(float(np.mean(p)), 3),
                             "mae": round(float(np.mean(np.abs(np.subtract(h, p)))), 3),
                             "pearson": metrics.rounded(metrics.pearson(h, p))})
    return {
        "dataset": dataset,
        "run": {"dir": str(run_dir) if run_dir else "", "model": meta.get("model"),
                "prompt_version": meta.get("prompt_version"), "limit": meta.get("limit"), "seed": meta.get("seed"),
                "key_points": meta.get("key_points"), "key_point_drafts": dict(key_point_stats or {})},
        "rows": len(records), "graded": len(ok), "failed": len(failed),
        "failures": [{"row_id": r["row_id"], "question_id": r["question_id"], "error": r.get("error", "")}
                     for r in failed[:MAX_FAILURES_LISTED]],
        "latency_ms": {"mean": round(float(lat.mean())) if len(lat) else None,
                       "p50": round(float(np.percentile(lat, 50))) if len(lat) else None,
                       "p95": round(float(np.percentile(lat, 95))) if len(lat) else None},
        "primary": "calibrated" if cal is not None else "raw",
        "metrics": metrics.summarize(human, pred, scale, step),
        "raw_metrics": metrics.summarize(human, raw, scale, step),
        "calibration": {"applied": cal is not None, "note": calibration_note,
                        "fitted_on": calibration.fitted_on if calibration else [],
                        "weights": calibration.weights if calibration else {}},
        "per_question": per_question,
        "order": {"right": right, "pairs": pairs},
        "key_point_verdicts": dict(key_point_verdicts or {}),
        "points": [[h, p, r["question_id"], r["row_id"]] for h, p, r in zip(human, pred, ok)],
        "anchors": [{"system": s, "pearson": r, "rmse": e} for s, r, e in ANCHORS.get(dataset.get("name"), [])],
    }


def _fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def metric_cell(key: str, v) -> str:
    return _pct(v) if key in ("exact", "within_one_step", "band_agreement") else _fmt(v)


def title(rep: dict) -> str:
    d = rep["dataset"]
    return f"Grader vs human scores: {d['name']} ({d['split']})"


def summary_lines(rep: dict) -> list[str]:
    d, run = rep["dataset"], rep["run"]
    sample = f"a stratified sample of {rep['rows']} (limit {run['limit']}, seed {run['seed']})" \
        if run.get("limit") and run["limit"] < d["rows"] else f"all {rep['rows']} rows"
    lines = [(f"Data set: {d['path']}, split {d['split']}, {sample}, {d['questions']} question(s), "
             f"human scale 0-{d['scale_max']:g} (step {d['step']:g})."),
             f"Model: {run['model']}, prompt {run['prompt_version']}, key points: {run['key_points']}.",
             (f"Graded {rep['graded']}, failed {rep['failed']}; latency mean {_fmt(rep['latency_ms']['mean'])} ms, "
             f"p95 {_fmt(rep['latency_ms']['p95'])} ms.")]
    cal = rep["calibration"]
    lines.append("Predicted = the data set's entry of bot/grading/weights.json applied to the signals." if cal["applied"]
                 else "Predicted = the grader's overall (0-10) scaled to the human scale; no calibration applied.")
    if cal.get("note"):
        lines.append(cal["note"])
    if rep.get("order", {}).get("pairs"):
        o = rep["order"]
        lines.append(f"Within-question order: {o['right']} of {o['pairs']} pairs right ({o['right'] / o['pairs']:.1%}).")
    kv = rep.get("key_point_verdicts") or {}
    if kv:
        lines.append(f"Key points: false-missing {_pct(kv['false_missing'])} of {kv['stated']} stated "
                     f"({_pct(kv['stated_marked_partial'])} marked partly), false-covered {_pct(kv['false_covered'])} "
                     f"of {kv['not_stated']} missing or contradicted ({_pct(kv.get('not_stated_marked_partial'))} "
                     f"marked partly).")
    if d.get("skipped"):
        lines.append("Left out: " + ", ".join(f"{n} ({why})" for why, n in d["skipped"].items()) + ".")
    return lines


def render_markdown(rep: dict) -> str:
    out = [f"# {title(rep)}", "", *summary_lines(rep), ""]
    cols = ["Metric", "Predicted"] + (["Raw overall"] if rep["primary"] == "calibrated" else [])
    out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, label in METRIC_ROWS:
        cells = [label, metric_cell(key, rep["metrics"][key])]
        if rep["primary"] == "calibrated":
            cells.append(metric_cell(key, rep["raw_metrics"][key]))
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Confusion by band (rows: human, columns: predicted; low < 35 % of the scale, high ≥ 75 %: 0-3, 4-7, 8-10 of 10):", "",
            "| human \\ predicted | " + " | ".join(metrics.BANDS) + " |", "|---|---|---|---|"]
    for band, row in zip(metrics.BANDS, rep["metrics"]["confusion"]):
        out.append(f"| {band} | " + " | ".join(str(v) for v in row) + " |")
    if rep["anchors"]:
        out += ["", "Published results on this data set (all answers, not our split): ", "",
                "| System | Pearson r | RMSE |", "|---|---|---|"]
        out += [f"| {a['system']} | {a['pearson']} | {a['rmse']} |" for a in rep["anchors"]]
    out += ["", "| Question | n | human mean | predicted mean | MAE | Pearson r |", "|---|---|---|---|---|---|"]
    out += [f"| {q['question_id']} | {q['n']} | {q['human_mean']:.2f} | {q['predicted_mean']:.2f} | {q['mae']:.2f} | "
            f"{_fmt(q['pearson'])} |" for q in rep["per_question"]]
    if rep["failures"]:
        out += ["", f"Failures ({rep['failed']}):", ""]
        out += [f"- `{f['row_id']}`: {f['error']}" for f in rep["failures"]]
    return "\n".join(out) + "\n"


def _jitter(key: str) -> float:
    """A fixed offset in [-0.5, 0.5) per row, so equal scores do not hide each other."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:6], 16) / 0xFFFFFF - 0.5


def scatter_svg(points: list, scale_max: float, step: float, size: int = 420) -> str:
    pad = 40
    inner = size - 2 * pad

    def x(v: float) -> float:
        return pad + inner * v / scale_max

    def y(v: float) -> float:
        return size - pad - inner * v / scale_max

    tick = step if scale_max / step <= 10 else scale_max / 5
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Human vs predicted scores" '
             f'viewBox="0 0 {size} {size}" width="{size}" height="{size}">'),
             f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="#fff" stroke="#d1d5db"/>']
    t = 0.0
    while t <= scale_max + 1e-9:
        parts.append(f'<line x1="{x(t):.1f}" y1="{pad}" x2="{x(t):.1f}" y2="{size - pad}" stroke="#f3f4f6"/>'
                     f'<line x1="{pad}" y1="{y(t):.1f}" x2="{size - pad}" y2="{y(t):.1f}" stroke="#f3f4f6"/>'
                     f'<text x="{x(t):.1f}" y="{size - pad + 14}" font-size="10" text-anchor="middle" fill="#6b7280">{t:g}</text>'
                     f'<text x="{pad - 6}" y="{y(t) + 3:.1f}" font-size="10" text-anchor="end" fill="#6b7280">{t:g}</text>')
        t += tick
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(scale_max)}" y2="{y(scale_max)}" stroke="#9ca3af" '
                 f'stroke-dasharray="4 4"/>')
    for h, p, qid, rid in points:
        hx = min(scale_max, max(0.0, h + _jitter(rid) * step * 0.6))
        parts.append(f'<circle cx="{x(hx):.1f}" cy="{y(p):.1f}" r="3" fill="#2563eb" fill-opacity="0.45">'
                     f'<title>{escape(str(rid))}: human {h:g}, predicted {p:g}</title></circle>')
    parts.append(f'<text x="{size / 2}" y="{size - 6}" font-size="12" text-anchor="middle" fill="#374151">human score</text>'
                 f'<text x="12" y="{size / 2}" font-size="12" text-anchor="middle" fill="#374151" '
                 f'transform="rotate(-90 12 {size / 2})">predicted score</text></svg>')
    return "".join(parts)


CSS = """body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans", "PingFang SC", sans-serif;
 color: #111827; background: #f9fafb; margin: 0; padding: 24px; }
main { max-width: 960px; margin: 0 auto; } h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0; background: #fff; } td, th { border: 1px solid #e5e7eb; padding: 4px 10px; }
th { background: #f3f4f6; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #4b5563; } .row { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
code { background: #f3f4f6; padding: 0 4px; }"""


def _table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f'<td class="{"n" if i else ""}">{escape(c)}</td>' for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def render_html(rep: dict) -> str:
    d = rep["dataset"]
    cal = rep["primary"] == "calibrated"
    mrows = [[label, metric_cell(k, rep["metrics"][k])] + ([metric_cell(k, rep["raw_metrics"][k])] if cal else [])
             for k, label in METRIC_ROWS]
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title(rep))}</title>"
             f"<style>{CSS}</style></head><body><main><h1>{escape(title(rep))}</h1>"),
             *[f'<p class="meta">{escape(line)}</p>' for line in summary_lines(rep)],
             '<div class="row"><div>', _table(["Metric", "Predicted"] + (["Raw overall"] if cal else []), mrows),
             "</div><div>", scatter_svg(rep["points"], d["scale_max"], d["step"]), "</div></div>",
             ("<h2>Confusion by band</h2><p class='meta'>Rows: human band, columns: predicted band "
             "(low &lt; 40 % of the scale, high ≥ 70 %).</p>"),
             _table(["human \\ predicted", *metrics.BANDS],
                    [[b, *map(str, row)] for b, row in zip(metrics.BANDS, rep["metrics"]["confusion"])])]
    if rep["anchors"]:
        parts += ["<h2>Published results on this data set</h2>",
                  _table(["System", "Pearson r", "RMSE"], [[a["system"], str(a["pearson"]), str(a["rmse"])]
                                                         for a in rep["anchors"]])]
    parts += ["<h2>Per question</h2>",
              _table(["Question", "n", "human mean", "predicted mean", "MAE", "Pearson r"],
                     [[q["question_id"], str(q["n"]), f"{q['human_mean']:.2f}", f"{q['predicted_mean']:.2f}",
                       f"{q['mae']:.2f}", _fmt(q["pearson"])] for q in rep["per_question"]])]
    if rep["failures"]:
        parts += [f"<h2>Failures ({rep['failed']})</h2><ul>"]
        parts += [f"<li><code>{escape(f['row_id'])}</code>: {escape(f['error'])}</li>" for f in rep["failures"]]
        parts.append("</ul>")
    parts.append("</main></body></html>\n")
    return "".join(parts)


def write(rep: dict, run_dir: Path) -> dict[str, Path]:
    run_dir = Path(run_dir)
    paths = {"json": run_dir / "report.json", "md": run_dir / "report.md", "html": run_dir / "report.html"}
    paths["json"].write_text(json.dumps(rep, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    paths["md"].write_text(render_markdown(rep), encoding="utf-8")
    paths["html"].write_text(render_html(rep), encoding="utf-8")
    return paths
