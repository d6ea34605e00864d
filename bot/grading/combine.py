"""The reducer: every signal -> one 0-10 score, with weights learned on dev (`weights.json`).

    index   = sum(w_s * signal_s)            w_s >= 0: a better signal never lowers the grade
    overall = 10 * isotonic(index)           a monotone map onto the human scale, read between knots

An entry holds the weights and knots for one set of signals: `default` (every signal; what the
product uses with the embedded model), `no_factcheck` (a model without token probabilities: most
endpoints), `model_free` (no grader model: `INTERVIEW_LLM_BACKEND=none`, or the fast full-split
evaluation), and per evaluation data set (`ads`, `mohler`, `*_model_free`), which grade on their
own scales. `weights.json` also holds the key-point verdict coefficients. Everything in
it is part of the grading version (version.py): refitting changes the version.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from bot.errors import UsageError
from bot.grading.result import Criterion
from bot.grading.signals import NAMES, Signal

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.json"
REDUCER = "nonnegative-linear+isotonic, capped by the key points"
# Instructions to the grader inside an answer earn nothing: whatever else it says, it is capped.
INJECTION_CAP = 3.0
# A grade never exceeds what its key points earn (10 x mean P(stated)) by more than this: a bare
# list of an item's key terms, or a reference-like text that states none of them, drew 5.1 from the
# overlaps and a praising model. Chosen on dev as the smallest margin that costs at most 0.01 of
# Pearson there (corpus dev 0.797 -> 0.790; behavioural dev 0.70 -> 0.76).
KEY_POINT_MARGIN = 3.0


def cap_by_key_points(overall: float, coverage: float) -> float:
    return round(min(overall, 10 * coverage + KEY_POINT_MARGIN), 1)


@dataclass
class Entry:
    weights: dict[str, float]
    knots_x: list[float]
    knots_y: list[float]
    signals: list[str] = field(default_factory=list)  # the signals it was fitted with
    fitted_on: list[dict] = field(default_factory=list)
    fitted_at: str = ""
    dev_metrics: dict = field(default_factory=dict)

    def index(self, values: dict[str, float]) -> float:
        return float(sum(w * values.get(k, 0.0) for k, w in self.weights.items()))

    def predict(self, values: dict[str, float]) -> float:
        """0-1."""
        return float(min(1.0, max(0.0, np.interp(self.index(values), self.knots_x, self.knots_y))))

    def to_dict(self) -> dict:
        return asdict(self)


def load_file(path: Path = WEIGHTS_PATH) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"verdicts": None, "entries": {}}
    except ValueError as e:
        raise UsageError(f"{path}: not JSON ({e}).", "Restore it with git, or refit with `interview calibrate`.") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise UsageError(f"{path}: not a weights file (no `entries`).", "Restore it with git.")
    return data


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> dict:
    return load_file(Path(path))


def weights_file(path: Path = WEIGHTS_PATH) -> dict:
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _cached(str(path), mtime)


# The product's entries, most signals first: with a fact check (the embedded model), with a model
# that gives no token probabilities (most endpoints), without a model.
FALLBACK = ("default", "no_factcheck", "model_free")


def entry_key(name: str, present: set[str], path: Path = WEIGHTS_PATH) -> str | None:
    """The name of the entry a score with signals `present` is read with: `name` if its signals
    are all present, else the first of FALLBACK that is."""
    entries = weights_file(path)["entries"]
    for key in (name, *FALLBACK):
        e = entries.get(key)
        if e is not None and set(e.get("signals") or NAMES) <= present:
            return key
    return None


def entry(name: str, present: set[str], path: Path = WEIGHTS_PATH) -> Entry | None:
    """The entry a score with signals `present` is read with (`entry_key`)."""
    key = entry_key(name, present, path)
    if key is None:
        return None
    try:
        return Entry(**weights_file(path)["entries"][key])
    except TypeError as err:
        raise UsageError(f"{path}: entry {key!r} is malformed ({err}).", "Restore it with git.") from None


def verdict_params(mode: str = "default", path: Path = WEIGHTS_PATH) -> dict:
    """The key-point verdict model: `model_free` (what grading uses: the judge, the evidence, the
    terms), `structural` (behavioural items, over their own judge; `model_free` until fitted), or
    `default` (with the grader model's missing list, kept for comparison)."""
    fitted = weights_file(path).get("verdicts") or {}
    v = fitted.get(mode) or (fitted.get("model_free") if mode == "structural" else None)
    if not v:  # before any fit: similarity alone
        return {"coef": {"similarity": 6.0, "bias": -4.0}, "covered": 0.5, "partial": 0.3}
    return v


def reduce(signals: list[Signal], name: str = "default", path: Path = WEIGHTS_PATH) -> tuple[float, dict[str, float]]:
    """(overall 0-10, each signal's share of the index) for the signals given."""
    values = {s.name: s.value for s in signals}
    e = entry(name, set(values), path)
    if e is None:  # no fitted entry: the plain mean of what is there
        return round(10 * sum(values.values()) / max(1, len(values)), 1), {k: 1 / len(values) for k in values}
    total = sum(e.weights.values()) or 1.0
    return round(10 * e.predict(values), 1), {k: w / total for k, w in e.weights.items() if w > 0}


@dataclass
class Score:
    overall: float  # 0-10
    criteria: list[Criterion]  # the signals that weigh in, heaviest first, each with its share and reason


def score(signals: list[Signal], name: str, probabilities: list[float], *, injected: bool = False) -> Score:
    """The one score of a grade: the signals reduced by entry `name`, capped by what the key
    points earn (their mean share, `probabilities`) and, for an answer holding instructions to
    the grader, at INJECTION_CAP."""
    overall, shares = reduce(signals, name)
    overall = cap_by_key_points(overall, sum(probabilities) / len(probabilities) if probabilities else 1.0)
    if injected:
        overall = min(overall, INJECTION_CAP)
    criteria = [Criterion(s.name, round(10 * s.value, 1), round(shares.get(s.name, 0.0), 3), s.explanation)
                for s in sorted(signals, key=lambda s: -shares.get(s.name, 0.0)) if shares.get(s.name, 0.0) > 0]
    return Score(overall, criteria)
