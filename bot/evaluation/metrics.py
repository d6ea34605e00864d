"""Agreement between the grader and human graders, in numpy (scipy is not a dependency).

Every metric takes human and predicted scores on the human scale (0..scale_max). Scores become
categories in steps of the human scale (`step`: 1 on a 0-10 integer scale, 0.5 on Mohler's 0-5)
for the quadratic weighted kappa, exact and adjacent (within one step) agreement. Bands are fixed
shares of the scale, the same cut-offs as the reports' colours: low < 40 %, mid < 70 %, high.
A metric that is undefined (fewer than two rows, a constant series) is None, never NaN.
"""
from __future__ import annotations

import math

import numpy as np

BANDS = ("low", "mid", "high")
BAND_CUTS = (0.35, 0.75)  # share of scale_max where mid and high start: 0-3 / 4-7 / 8-10 of 10


def band(score: float, scale_max: float) -> str:
    share = score / scale_max if scale_max else 0.0
    return "low" if share < BAND_CUTS[0] else "mid" if share < BAND_CUTS[1] else "high"


def _finite(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def pearson(x, y) -> float | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    den = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return _finite(float(dx @ dy) / den) if den > 0 else None


def rankdata(a) -> np.ndarray:
    """1-based ranks; ties get the mean of the ranks they span (what Spearman needs)."""
    a = np.asarray(a, float)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(len(a), float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x, y) -> float | None:
    return pearson(rankdata(x), rankdata(y)) if len(x) >= 2 else None


def categories(values, step: float, scale_max: float) -> np.ndarray:
    """Round half up to the nearest step (np.round would round 6.5 down to 6), clipped to the scale."""
    n = round(scale_max / step)
    return np.clip(np.floor(np.asarray(values, float) / step + 0.5), 0, n).astype(int)


def qwk(human_cat, pred_cat, n_categories: int) -> float | None:
    """Cohen's kappa with quadratic weights over categories 0..n_categories-1."""
    h, p = np.asarray(human_cat, int), np.asarray(pred_cat, int)
    if len(h) < 2 or n_categories < 2:
        return None
    observed = np.zeros((n_categories, n_categories))
    np.add.at(observed, (h, p), 1)
    idx = np.arange(n_categories)
    weights = (idx[:, None] - idx[None, :]) ** 2 / (n_categories - 1) ** 2
    expected = np.outer(observed.sum(1), observed.sum(0)) / len(h)
    den = float((weights * expected).sum())
    return _finite(1 - float((weights * observed).sum()) / den) if den > 0 else None


def confusion(human, pred, scale_max: float) -> list[list[int]]:
    """Rows: human band, columns: predicted band, in BANDS order."""
    m = [[0] * len(BANDS) for _ in BANDS]
    for h, p in zip(human, pred):
        m[BANDS.index(band(h, scale_max))][BANDS.index(band(p, scale_max))] += 1
    return m


def summarize(human, pred, scale_max: float, step: float) -> dict:
    """All the agreement numbers of one set of predictions, JSON-ready."""
    h, p = np.asarray(human, float), np.asarray(pred, float)
    n = len(h)
    if n == 0:
        return {"n": 0, "pearson": None, "spearman": None, "qwk": None, "rmse": None, "mae": None,
                "exact": None, "within_one_step": None, "band_agreement": None,
                "confusion": confusion([], [], scale_max), "human_mean": None, "predicted_mean": None}
    hc, pc = categories(h, step, scale_max), categories(p, step, scale_max)
    cm = confusion(h, p, scale_max)
    return {
        "n": n,
        "pearson": rounded(pearson(h, p)),
        "spearman": rounded(spearman(h, p)),
        "qwk": rounded(qwk(hc, pc, round(scale_max / step) + 1)),
        "rmse": rounded(math.sqrt(float(((h - p) ** 2).mean()))),
        "mae": rounded(float(np.abs(h - p).mean())),
        "exact": rounded(float((hc == pc).mean())),
        "within_one_step": rounded(float((np.abs(hc - pc) <= 1).mean())),
        "band_agreement": rounded(sum(cm[i][i] for i in range(len(BANDS))) / n),
        "confusion": cm,
        "human_mean": rounded(float(h.mean())),
        "predicted_mean": rounded(float(p.mean())),
    }


def rounded(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)
