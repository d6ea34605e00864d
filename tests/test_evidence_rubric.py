from bot.grading import rubric
from bot.grading.evidence import FULL, WEAK, quote_support
from bot.grading.result import COVERED, MISSING, PARTIAL, FactCheck, KeyPointResult, WrongClaim

ANSWER = "Dropout randomly drops units with probability p during training. BatchNorm normalises activations."


def test_quote_support_exact_and_spacing():
    assert quote_support("randomly drops units", ANSWER) == 1.0
    assert quote_support("Randomly  DROPS units!", ANSWER) == 1.0


def test_quote_support_small_edits_are_partial_scattered_words_are_not():
    assert WEAK <= quote_support("randomly drops the units with probability", ANSWER) < 1.0
    scattered = "dropout normalises training units probability"  # words all in the answer, never together
    assert quote_support(scattered, ANSWER) < FULL
    assert quote_support("gradient clipping prevents explosions", ANSWER) < WEAK


def points(*statuses):
    return [KeyPointResult(f"p{i}", s) for i, s in enumerate(statuses)]


def test_coverage_credit():
    assert rubric.coverage(points(COVERED, PARTIAL, MISSING, MISSING)) == 0.375


def test_judgement_is_capped_by_coverage_and_facts():
    full, _ = rubric.score(points(COVERED, COVERED), [], 1.0, 1.0)
    empty, _ = rubric.score(points(MISSING, MISSING), [], 1.0, 1.0)
    false, _ = rubric.score(points(COVERED, COVERED), [], 1.0, 0.0)
    assert full == 10.0 and empty <= 4.0 and false <= 4.5


def test_wrong_claims_cost_points_up_to_a_cap():
    base, _ = rubric.score(points(COVERED, COVERED), [], 1.0, 1.0)
    one, _ = rubric.score(points(COVERED, COVERED), [WrongClaim("a", "b")], 1.0, 1.0)
    many, _ = rubric.score(points(COVERED, COVERED), [WrongClaim(str(i), "x") for i in range(9)], 1.0, 1.0)
    assert base - one == rubric.WRONG_CLAIM_PENALTY and base - many == rubric.MAX_PENALTY


def test_factual_is_length_weighted_and_clipped():
    assert rubric.factual([]) is None
    hi = rubric.factual([FactCheck("a" * 10, 0.95)])
    lo = rubric.factual([FactCheck("a" * 10, 0.3)])
    mixed = rubric.factual([FactCheck("a" * 30, 0.8), FactCheck("b" * 10, 0.5)])
    assert hi == 1.0 and lo == 0.0 and 0.7 < mixed < 0.8


def test_status_thresholds_are_monotone():
    covered, partial = rubric.CUTOFFS["zh"]
    sims = [0.8, partial, covered, 0.99]
    assert [rubric.status_for(s) for s in sims] == [MISSING, PARTIAL, COVERED, COVERED]


def test_english_and_cross_language_cutoffs_are_lower():
    assert rubric.status_for(0.87, "zh") == MISSING
    assert rubric.status_for(0.87, "en") == COVERED and rubric.status_for(0.84, "en") == PARTIAL
    assert rubric.status_for(0.86, "cross") == PARTIAL and rubric.status_for(0.88, "cross") == COVERED
