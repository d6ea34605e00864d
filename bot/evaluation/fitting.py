"""Fitting the grade's learned numbers on dev runs (`interview calibrate`, `interview eval --fit`).

- which runs a fit may use: dev rows only (`require_dev`);
- reading run folders that `interview eval` wrote (`read_runs`);
- the score entry (signals -> the human scale) over all their graded rows (`fit_scores`), and the
  key-point verdict model over the labelled key points of our own set (`fit_verdicts`), each saved
  into the weights file (bot/grading/weights.json unless another is given).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import NotFoundError, UsageError
from bot.evaluation import calibration, datasets, metrics, verdict_fit
from bot.evaluation.runner import OK, RunDir
from bot.grading.combine import Entry


@dataclass(frozen=True)
class Run:
    """A run to fit on: its meta.json (`run_dir` added: where it was read from) and one record per row."""

    meta: dict
    records: list[dict]


@dataclass(frozen=True)
class ScoreFit:
    entry: Entry  # with its in-sample dev metrics (how far the fit moved dev, not a result to report)
    name: str  # the entry it was saved as
    output: Path  # the weights file written


@dataclass(frozen=True)
class VerdictFit:
    mode: str  # model_free (every run graded without a model) or default
    params: dict
    points: int  # labelled key points fitted on
    output: Path


def require_dev(dataset: str | None, split: str | None, run_dir: str | None = None) -> None:
    """Tune on dev only: refuse test rows (and `all`, which holds them, for the built-in sets).
    `run_dir` names the run in the message (else the data set and split)."""
    if split == "test" or (split != "dev" and dataset in datasets.BUILTIN):
        where = run_dir or f"`{dataset} --split {split}`"
        raise UsageError(f"{where} is on the {split} split; a calibration is fitted on dev rows only.",
                         f"Run `interview eval {dataset} --split dev --limit 120` and fit on that.")


def _require_dev_run(run: Run) -> None:
    require_dev(run.meta.get("dataset"), run.meta.get("split"), run.meta.get("run_dir"))


def read_runs(run_dirs: Iterable[Path]) -> list[Run]:
    """The runs in these folders, each with its latest record per row."""
    runs = []
    for d in run_dirs:
        rd = RunDir(d)
        meta = rd.meta()
        if meta is None:
            raise NotFoundError(f"{d} is not a run folder (no meta.json).", "Pass folders that `interview eval` wrote.")
        runs.append(Run(dict(meta, run_dir=str(d)), list(rd.latest().values())))
    return runs


def kept_weights(entry: str, output: Path | None = None) -> dict[str, float]:
    """The weights of another entry of the weights file, to keep while fitting only the map."""
    output = output or calibration.CALIBRATION_PATH
    e = calibration.load_file(output)["entries"].get(entry)
    if e is None:
        raise UsageError(f"--keep-weights {entry}: no such entry in {output}.")
    return e["weights"]


def fit_scores(runs: list[Run], *, output: Path | None = None, name: str | None = None,
               drop: Iterable[str] = (), keep_weights: str | None = None) -> ScoreFit:
    """Fit one score entry over the graded rows of all `runs` (dev only) and save it as `name`
    (default: the data set's, or `default` for several). `drop`: signals left out of the fit;
    `keep_weights`: an entry whose weights are kept (only the map onto the scale is fitted)."""
    output = output or calibration.CALIBRATION_PATH
    weights = kept_weights(keep_weights, output) if keep_weights else None
    drop = set(drop)
    rows, fitted_on = [], []
    for run in runs:
        _require_dev_run(run)
        meta = run.meta
        ok = [r for r in run.records if r.get("status") == OK]
        rows += [(calibration.record_features(r), r["human"] / meta["scale_max"]) for r in ok]
        fitted_on.append({"dataset": meta["dataset"], "split": meta["split"], "rows": len(ok), "model": meta["model"],
                          "prompt_version": meta.get("prompt_version"), "limit": meta.get("limit"),
                          "run": meta.get("run_dir", "")})
    unknown = drop - set(calibration.FEATURES)
    if unknown:
        raise UsageError(f"--drop {', '.join(sorted(unknown))}: no such signal.",
                         f"Signals: {', '.join(calibration.FEATURES)}.")
    cal = calibration.fit(rows, signals=[n for n in calibration.FEATURES if n not in drop], fitted_on=fitted_on,
                          weights=weights)
    for run in runs:  # in-sample: how far the fit moved dev, not a result to report
        meta = run.meta
        ok = [r for r in run.records if r.get("status") == OK]
        h = [r["human"] for r in ok]
        cal.dev_metrics[f"{meta['dataset']}-{meta['split']}"] = {
            kind: {k: v for k, v in metrics.summarize(h, p, meta["scale_max"], meta["step"]).items()
                   if k in ("pearson", "qwk", "rmse", "mae")}
            for kind, p in (("raw", [r["overall"] / 10 * meta["scale_max"] for r in ok]),
                            ("calibrated", [cal.predict(calibration.record_features(r)) * meta["scale_max"] for r in ok]))}
    names = {run.meta["dataset"] for run in runs}
    name = name or (names.pop() if len(names) == 1 else "default")
    calibration.save(cal, name, output)
    return ScoreFit(cal, name, output)


def fit_verdicts(runs: list[Run], *, output: Path | None = None) -> VerdictFit:
    """Fit the key-point verdict model on the labelled key points of dev runs of our own set
    (`interview eval corpus --split dev`) and save it for the runs' mode (with or without a model;
    `structural` for runs of behavioural items, `interview eval behavioural --split dev`)."""
    output = output or calibration.CALIBRATION_PATH
    points, structural = [], True
    for run in runs:
        _require_dev_run(run)
        ds = datasets.load(run.meta["dataset"], run.meta["split"])
        points += verdict_fit.training_points(ds.rows, run.records)
        structural = structural and all(row.structural for row in ds.rows)
    if len(points) < calibration.MIN_ROWS:
        raise UsageError(f"Only {len(points)} labelled key points in those runs.",
                         "Pass dev runs of `interview eval corpus --split dev`.")
    mode = "model_free" if all(run.meta["model"] == "none" for run in runs) else "default"
    if structural:  # behavioural items: their own judge, their own verdicts, over the judge alone
        mode = "structural"
    params = verdict_fit.fit(points, features=verdict_fit.STRUCTURAL_FEATURES if structural else None)
    calibration.save_verdicts(mode, params, output)
    return VerdictFit(mode, params, len(points), output)
