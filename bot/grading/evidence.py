"""Checks that a quote the model gives as evidence really occurs in the candidate's answer.

Small models paraphrase while "quoting", so the match ignores case, spacing and punctuation and
tolerates small edits, but only within one stretch of the answer about as long as the quote:
words scattered over a long answer on the same topic do not add up to a quote.
"""
from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

_DROP = re.compile(r"[\W_]+", re.UNICODE)

FULL, WEAK = 0.85, 0.5  # quote_support thresholds: counts as quoted / as a loose paraphrase


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return _DROP.sub("", text)


def quote_support(quote: str, answer: str) -> float:
    """Share (0-1) of the quote's characters found in order inside one window of the answer."""
    q, a = normalize(quote), normalize(answer)
    if not q:
        return 0.0
    if q in a:
        return 1.0
    width = int(len(q) * 1.3) + 2
    step = max(1, len(q) // 4)
    best = 0.0
    for start in range(0, max(1, len(a) - len(q) // 2), step):
        blocks = SequenceMatcher(None, q, a[start:start + width], autojunk=False).get_matching_blocks()
        best = max(best, sum(b.size for b in blocks if b.size >= 2) / len(q))
        if best >= FULL:
            break
    return best
