"""Ablation of the learned score on dev runs: each signal's gain, leave-one-question-out.

For every dev run given, the reducer (non-negative weights + isotonic map, bot/evaluation/
calibration.fit) is fitted on all questions but one and scored on the one left out; Pearson is
over all held-out predictions. Rows: all signals, all but one (the drop is that signal's gain),
and each signal alone. No model call: the runs' stored signals are read.

    python bench/ablation.py bench/results/eval/corpus-dev-all-s0-qwen2.5-coder-1.5b [RUN...]

Writes bench/results/ablation.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.evaluation import calibration, metrics  # noqa: E402
from bot.evaluation.runner import OK, RunDir  # noqa: E402


def loqo(rows: list[tuple[dict, float, str]], signals: list[str]) -> float | None:
    preds, truth = [], []
    for q in sorted({g for _, _, g in rows}):
        train = [(f, y) for f, y, g in rows if g != q]
        test = [(f, y) for f, y, g in rows if g == q]
        try:
            e = calibration.fit(train, signals=signals)
        except Exception:  # noqa: BLE001 - too few rows: no prediction for this fold
            continue
        preds += [e.predict(f) for f, _ in test]
        truth += [y for _, y in test]
    return metrics.rounded(metrics.pearson(truth, preds))


def main(run_dirs: list[str]) -> dict:
    report = {}
    for d in run_dirs:
        rd = RunDir(Path(d))
        meta = rd.meta()
        recs = [r for r in rd.latest().values() if r.get("status") == OK]
        rows = [(calibration.record_features(r), r["human"] / meta["scale_max"], r["question_id"]) for r in recs]
        present = [n for n in calibration.FEATURES if n != "not_stopped" and all(n in f for f, _, _ in rows
                                                                                   if f.get("not_stopped", 1))]
        full = loqo(rows, present)
        res = {"n": len(rows), "questions": len({g for _, _, g in rows}), "all": full,
               "without": {}, "alone": {}}
        for s in present:
            res["without"][s] = loqo(rows, [x for x in present if x != s])
            res["alone"][s] = loqo(rows, [s])
        report[meta.get("run_dir", d).rstrip("/").split("/")[-1]] = res
        print(f"\n{d}: n={res['n']} questions={res['questions']} LOQO Pearson, all signals {full}")
        print(f"  {'signal':20s} {'alone':>7s} {'without':>8s} {'gain':>7s}")
        for s in present:
            w, a = res["without"][s], res["alone"][s]
            gain = None if full is None or w is None else round(full - w, 3)
            print(f"  {s:20s} {a if a is not None else '–':>7} {w if w is not None else '–':>8} {gain if gain is not None else '–':>7}")
    out = ROOT / "bench" / "results" / "ablation.json"
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    return report


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(str(p) for p in (ROOT / "bench" / "results" / "eval").glob("*-dev-*")))
