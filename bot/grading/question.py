"""What an answer is graded against: the question, its reference answer and key points, in each
language the item is written in, and its fingerprint (half of a stored grade's identity; the
other half is the grading version, version.py). Every stage of the grading reads it; none
changes it. It imports only the pure text helpers (lexical, evidence), so every stage can import it
without a cycle.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

from bot.grading import lexical
from bot.grading.evidence import normalize


@dataclass
class Question:
    """What the grader needs to know about a question (a corpus item, or a transcript's question)."""
    id: str
    question: str
    reference: str
    key_points: list[str]
    language: str = "zh"
    has_reference: bool = True  # False for a transcript question not in the corpus
    translations: dict[str, list[str]] = field(default_factory=dict)  # language -> the key points in it
    questions: dict[str, str] = field(default_factory=dict)  # language -> the question in it
    # Key points grade the shape of a story (situation, own actions, result, reflection), not facts:
    # a behavioural pack's. A point is missing only when the model lists it, and the score goes
    # through the `structural` entry of weights.json (the default weights, their own map to 0-10).
    structural: bool = False
    references: dict[str, str] = field(default_factory=dict)  # language -> the reference written in it
    # language -> one short phrase per key point naming what it is about (follow-ups ask about it);
    # not part of the fingerprint: it changes no grade.
    aspects: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_item(cls, item) -> "Question":
        return cls(item.id, item.question, item.answer, list(item.key_points), item.language or "zh",
                   translations=dict(getattr(item, "translations", {}) or {}),
                   questions=dict(getattr(item, "questions", {}) or {}),
                   structural=is_structural(getattr(item, "domain", "")),
                   references=dict(getattr(item, "answers", {}) or {}),
                   aspects=dict(getattr(item, "aspects", {}) or {}))

    def fingerprint(self) -> str:
        extra = [f"{lang}:{p}" for lang, pts in sorted(self.translations.items()) for p in pts]
        extra += [f"q-{lang}:{text}" for lang, text in sorted(self.questions.items())]
        extra += ["structural"] if self.structural else []
        extra += [f"a-{lang}:{text}" for lang, text in sorted(self.references.items())]
        return question_fingerprint(self.question, self.reference, self.key_points + extra)


def digest(*parts: str) -> str:
    """sha256 of the parts, each ended by a NUL (what a grade's identity is made of: here the
    question's fingerprint, in version.py the grading version)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def question_fingerprint(question: str, reference: str, key_points: list[str]) -> str:
    """The question, reference and key points a grade was made against (16 hex digits)."""
    return digest(question.strip(), reference.strip(), *[k.strip() for k in key_points])[:16]


def is_structural(domain: str) -> bool:
    return domain.strip().lower() in ("behavioural", "behavioral")


def in_language(q: Question, lang: str) -> Question:
    """The question as the model reads it for an answer in `lang`: written whole in that language
    (reference and key points, one by one) where the item has it, else as it is. Key point numbers
    stay the same, so the model's "missing" list needs no mapping back."""
    points = q.translations.get(lang, [])
    if lang == q.language or not q.references.get(lang) or len(points) != len(q.key_points):
        return q
    return dataclasses.replace(q, question=q.questions.get(lang, q.question), reference=q.references[lang],
                               key_points=list(points), language=lang, translations={}, questions={}, references={})


def reference_points(reference: str) -> list[str]:
    """Key points for a question that has none curated: the reference's sentences (or its clauses,
    when it is one sentence), at most 8."""
    parts = [x for x in lexical.sentences(reference) if len(normalize(x)) >= 4]
    if len(parts) < 2:
        parts = [x for x in lexical.clauses(reference) if len(normalize(x)) >= 6] or parts
    return parts[:8] or [reference.strip()]
