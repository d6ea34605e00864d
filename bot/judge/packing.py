"""How one answer and its key points become one model input (shared by training and run time).

One sequence per answer: `<s> passage: ANSWER </s>`, then for each key point `</s> query: POINT
</s>`. Every key point's tokens see the answer and themselves; the answer's tokens see only the
answer. So each point is judged as a cross-encoder judges a (point, answer) pair, and the answer is
encoded once for all of a question's points instead of once per point. Every point's positions
start right after the answer, as if it were the only one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.judge.e5file import Tokenizer

MAX_POINT_TOKENS = 48
MAX_POSITIONS = 512
LABELS = ("stated", "partly", "missing", "contradicted")


@dataclass
class Packed:
    ids: np.ndarray        # [T] token ids
    positions: np.ndarray  # [T]
    segment: np.ndarray    # [T]: 0 the answer, i + 1 the i-th point
    answer_tokens: int     # tokens of the answer's segment (with <s> and </s>)

    @property
    def points(self) -> int:
        return int(self.segment.max(initial=0))


def answer_budget(point_lengths: list[int]) -> int:
    """Answer content tokens that fit beside the longest point within the position table."""
    longest = max(point_lengths, default=0) + 3
    return MAX_POSITIONS - longest - 2


def encode_points(tok: Tokenizer, points: list[str]) -> list[list[int]]:
    return [tok.encode("query: " + p)[:MAX_POINT_TOKENS] for p in points]


def pack(tok: Tokenizer, answer_ids: list[int], point_ids: list[list[int]]) -> Packed:
    """`answer_ids`: the answer's content tokens (already cut to fit, see `windows`)."""
    ids = [tok.bos, *answer_ids, tok.eos]
    seg = [0] * len(ids)
    pos = list(range(len(ids)))
    la = len(ids)
    for i, p in enumerate(point_ids, 1):
        part = [tok.eos, *p, tok.eos]
        ids += part
        seg += [i] * len(part)
        pos += list(range(la, la + len(part)))
    return Packed(np.asarray(ids, np.int64), np.asarray(pos, np.int64), np.asarray(seg, np.int64), la)


def windows(answer_ids: list[int], budget: int, overlap: int = 64) -> list[list[int]]:
    """An answer longer than the position table is judged in overlapping windows (each point takes
    its best window: see `bot.judge.model.combine_windows`)."""
    if len(answer_ids) <= budget:
        return [answer_ids]
    step = max(budget - overlap, 1)
    return [answer_ids[s:s + budget] for s in range(0, max(len(answer_ids) - overlap, 1), step)]


MASKS = ("packed", "cross")


def attention_bias(segment: np.ndarray, mask: str = "packed") -> np.ndarray:
    """[T, T] additive mask: 0 where a token may look, -1e4 elsewhere. Point i looks at the answer
    and at itself. The answer looks at itself ("packed": it is read without the points) or also at
    every point ("cross": it is read knowing what is asked of it, still one pass per answer)."""
    if mask not in MASKS:
        raise ValueError(f"unknown attention mask {mask!r} (one of {', '.join(MASKS)})")
    q = segment[:, None]
    k = segment[None, :]
    allowed = (k == 0) | (q == k)
    if mask == "cross":
        allowed = allowed | (q == 0)
    return np.where(allowed, 0.0, -1e4).astype(np.float32)


def pooling(segment: np.ndarray, points: int) -> np.ndarray:
    """[points, T]: the mean over each point's tokens."""
    m = (segment[None, :] == np.arange(1, points + 1)[:, None]).astype(np.float32)
    return m / np.maximum(m.sum(1, keepdims=True), 1.0)
