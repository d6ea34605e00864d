"""Fitting the reducer: signals -> a score on the human scale, learned on dev runs only.

The features are the grade's signals (bot/grading/signals.py), each 0-1, higher is better, plus
`not_stopped` (0 when a pre-check stopped the answer). Two steps, one fit over all rows given:
 1. index  z = w . features, w >= 0 (non-negative least squares against human score / scale max):
    more coverage can never lower a grade.
 2. score  = isotonic(z): pool-adjacent-violators regression of the normalized human score on z.
The result is an entry of bot/grading/weights.json (combine.Entry), the one file that holds every
learned number of a grade. `default` is what the product grades with; `ads`/`mohler` map onto
those data sets' scales. Refit with `interview calibrate RUN_DIR... --name NAME`.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.errors import UsageError
from bot.grading import combine
from bot.grading.combine import Entry
from bot.grading.prechecks import DONT_KNOW, ECHO, EMPTY, GIBBERISH, OFF_TOPIC
from bot.grading.result import Grade
from bot.grading.signals import NAMES

CALIBRATION_PATH = combine.WEIGHTS_PATH
FEATURES = NAMES + ("not_stopped",)
STOP_FLAGS = {EMPTY, DONT_KNOW, GIBBERISH, ECHO, OFF_TOPIC}
MIN_ROWS = 20  # fewer dev rows than this cannot support the weights and an isotonic map


def features(grade) -> dict[str, float]:
    """The signals of a Grade by name (what the eval runner stores per row)."""
    f = {s["name"]: float(s["value"]) for s in grade.signals}
    f["not_stopped"] = 0.0 if STOP_FLAGS & set(grade.flags) else 1.0
    return f


def record_features(record: dict) -> dict[str, float]:
    """Features of an eval result line, from its stored grade when it has one."""
    if isinstance(record.get("grade"), dict) and record["grade"].get("signals"):
        return features(Grade.from_dict({"question": "", "answer": "", **record["grade"]}))
    return record.get("features") or {}


def nnls(a: np.ndarray, b: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """min ||a x - b|| subject to x >= 0 (Lawson & Hanson's active-set method)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = a.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, bool)
    for _ in range(3 * n + 10):
        grad = a.T @ (b - a @ x)
        if passive.all() or grad[~passive].max() <= tol:
            break
        passive[np.argmax(np.where(passive, -np.inf, grad))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > tol).all():
                x = z
                break
            # Step back towards x until the first coordinate hits zero, and drop it.
            blocked = passive & (z <= tol)
            alpha = np.min(x[blocked] / np.maximum(x[blocked] - z[blocked], 1e-300))
            x = x + alpha * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
    return x


def isotonic(x, y) -> tuple[list[float], list[float]]:
    """Pool adjacent violators: knots (block mean x, block mean y), x strictly and y weakly increasing."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x, kind="stable")
    blocks: list[list[float]] = []  # [sum_x, sum_y, count]
    prev = None
    for xi, yi in zip(x[order], y[order]):
        if blocks and xi == prev:  # equal x must get one value: join the block holding its twin
            blocks[-1] = [blocks[-1][0] + xi, blocks[-1][1] + yi, blocks[-1][2] + 1]
        else:
            blocks.append([xi, yi, 1])
        prev = xi
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            sx, sy, c = blocks.pop()
            blocks[-1] = [blocks[-1][0] + sx, blocks[-1][1] + sy, blocks[-1][2] + c]
    return [b[0] / b[2] for b in blocks], [b[1] / b[2] for b in blocks]


def fit(rows: list[tuple[dict[str, float], float]], *, signals: list[str] | None = None,
        fitted_on: list[dict] | None = None, weights: dict[str, float] | None = None) -> Entry:
    """rows: (features, human score / scale max). Only `signals` (default: those every row has)
    are used, so an entry fitted on model-free runs needs no model signal. With `weights`, those
    are kept and only the isotonic map is fitted (a data set on its own scale, graded by the
    product's weights). Deterministic."""
    if len(rows) < MIN_ROWS:
        raise UsageError(f"Only {len(rows)} graded dev rows; a fit needs at least {MIN_ROWS}.",
                         "Run a larger dev evaluation (e.g. --limit 120) and fit again.")
    names = [n for n in FEATURES if (signals is None or n in signals or n == "not_stopped")
             and all(n in f for f, _ in rows if f.get("not_stopped", 1.0))]
    if weights is not None:  # keep another entry's weights; fit only the map onto this scale
        names = [n for n in weights if weights[n] > 0]
    a = np.array([[f.get(k, 0.0) for k in names] for f, _ in rows])
    y = np.array([t for _, t in rows])
    # Centre both sides so the intercept is free; NNLS then constrains only the feature weights.
    w = np.array([weights[n] for n in names]) if weights is not None else nnls(a - a.mean(0), y - y.mean())
    z = a @ w
    kx, ky = isotonic(z, y) if w.any() else ([0.0], [float(y.mean())])
    return Entry({k: round(float(v), 6) for k, v in zip(names, w)}, [round(v, 6) for v in kx],
                 [round(v, 6) for v in ky], [n for n in names if n != "not_stopped"], fitted_on or [],
                 datetime.now(UTC).isoformat(timespec="seconds"))


def load_file(path: Path = CALIBRATION_PATH) -> dict:
    return combine.load_file(path)


def load(name: str, path: Path = CALIBRATION_PATH) -> Entry | None:
    """The entry for `name` (a data set), else `default`, else None (raw scores)."""
    entries = load_file(path)["entries"]
    entry = entries.get(name) or entries.get("default")
    if entry is None:
        return None
    try:
        return Entry(**entry)
    except TypeError as e:
        raise UsageError(f"{path}: the entry for {name!r} is malformed ({e}).",
                         "Refit it with `interview calibrate RUN_DIR`.") from None


def save(entry: Entry, name: str, path: Path = CALIBRATION_PATH) -> None:
    data = load_file(path)
    data["entries"][name] = entry.to_dict()
    _write(data, path)


def save_verdicts(mode: str, params: dict, path: Path = CALIBRATION_PATH) -> None:
    """The key-point verdict model for `mode` (default: with the grader model; model_free)."""
    data = load_file(path)
    data["verdicts"] = {**(data.get("verdicts") or {}), mode: params}
    _write(data, path)


def _write(data: dict, path: Path) -> None:
    data["version"] = 2
    data["reducer"] = combine.REDUCER
    data["signals"] = list(FEATURES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"Could not write {path}: {e.strerror}.", "Pick a writable --output path.") from None


def choose(choice: str, ds_name: str, present: set[str]):
    """(the weights entry for this data set or None, a note for the report)."""
    if choice == "none" or ds_name == "corpus":  # our own set: the product's grade itself is reported
        return None, ""
    path = CALIBRATION_PATH if choice == "auto" else Path(choice)
    if choice != "auto" and not path.is_file():
        raise UsageError(f"--calibration {choice}: no such file.", "Use auto, none, or a weights JSON file.")
    for name in (ds_name, f"{ds_name}_model_free"):
        e = combine.load_file(path)["entries"].get(name)
        if e and set(e.get("signals") or []) <= present:
            return combine.Entry(**e), ""
    return None, (f"{path} has no entry for {ds_name} with these signals: the grader's own overall is reported. "
                  f"Fit one on a dev run (--fit).")
