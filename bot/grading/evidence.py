"""Checks that a quote the model gives as evidence really occurs in the candidate's answer.

Small models paraphrase while "quoting", so the match ignores case, spacing and punctuation, and
accepts a quote whose longest run found in the answer covers most of it.
"""
from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

_DROP = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return _DROP.sub("", text)


def quote_support(quote: str, answer: str) -> float:
    """Share (0-1) of the quote's characters found, in order, as one run or a few runs in the answer."""
    q, a = normalize(quote), normalize(answer)
    if not q:
        return 0.0
    if q in a:
        return 1.0
    matcher = SequenceMatcher(None, q, a, autojunk=False)
    matched = sum(b.size for b in matcher.get_matching_blocks() if b.size >= 3)
    return matched / len(q)


FULL, WEAK = 0.85, 0.6  # quote_support thresholds: counts as quoted / as a loose paraphrase
