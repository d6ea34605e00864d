"""From turns to (question, answer) pairs.

1. Small talk is dropped: a turn that is only greetings, audio checks, thanks or "mm-hm"
   ("can you hear me?", "能听到吗？", "好的") is no question and no answer. Inside a real question,
   small-talk sentences are cut ("Great, thanks. Next: what is dropout?" -> "Next: what is dropout?").
2. Consecutive turns of one speaker are merged (subtitle cues split sentences; a small-talk turn
   between two turns of the candidate no longer separates them).
3. The interviewer is, in this order:
   a. `--interviewer NAME` (case-insensitive; a prefix such as the first name is enough);
   b. the role a label states (`Q:`, `问:`, `面试官:`, a chat's `assistant`);
   c. the speaker with the highest score  share-of-question-like-turns + share-of-turns-matching-a-
      corpus-question (the second term only when a matcher is given). A turn is question-like when it
      ends with `?`/`？` or opens with a question word (what/how/why/讲讲/什么/为什么/...). Ties go to the
      speaker with the shorter turns (interviewers ask briefly, candidates explain).
4. Each interviewer turn opens a question; every other speaker's turns up to the next interviewer
   turn are its answer (multi-turn answers are joined). A question with no answer is kept with an
   empty answer (it scores 0 without an LLM call).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from bot.grading.prechecks import is_dont_know
from bot.transcripts import TranscriptError
from bot.transcripts.readers import CANDIDATE, INTERVIEWER, Turn

# Phrases that carry no interview content. Removed from a turn; if (almost) nothing is left, the
# turn was small talk. Longest first, so "thank you very much" goes before "thank you".
_SMALL_TALK = sorted([
    # English: audio/video checks, greetings, thanks, fillers, logistics
    "can you hear me", "can you hear me now", "can you hear me okay", "can you hear me ok", "do you hear me",
    "can you see my screen", "can you see me", "you're on mute", "you are on mute", "i can hear you",
    "i can hear you fine", "i can see you", "sorry you broke up", "you broke up", "the connection is bad",
    "hello", "hi", "hey", "hi there", "good morning", "good afternoon", "good evening", "nice to meet you",
    "how are you", "i'm fine", "i'm good", "i'm doing well", "doing well", "fine thanks",
    "thank you", "thanks", "thank you very much", "thanks a lot", "you're welcome", "bye", "goodbye", "see you",
    "yes", "yeah", "yep", "no", "ok", "okay", "sure", "right", "great", "good", "cool", "alright", "all right",
    "mm-hm", "mhm", "uh-huh", "uh huh", "hmm", "um", "uh", "got it", "i see", "makes sense", "sounds good",
    "perfect", "nice", "good answer", "great answer", "interesting", "go on", "go ahead", "please go on",
    "let's get started", "let's start", "ready to start", "ready to begin", "shall we", "shall we start", "shall we begin", "let's begin", "ready",
    "are you ready", "i'm ready", "one moment", "just a second", "give me a second", "sorry", "excuse me",
    "could you repeat that", "can you repeat the question", "sorry could you repeat", "next question",
    "let's move on", "moving on", "that's all", "that's it", "that's all from me", "that's all i have",
    "do you have any questions for me", "do you have any questions", "any questions for me",
    "thanks for your time", "thank you for your time", "have a nice day",
    # Chinese
    "能听到我说话吗", "能听到吗", "听得到吗", "听得见吗", "能听见吗", "听得到", "听得见", "能听到", "可以听到",
    "声音有点卡", "网络有点卡", "你那边卡了", "卡了", "看得到我的屏幕吗", "能看到屏幕吗", "你静音了",
    "你好", "您好", "大家好", "早上好", "下午好", "晚上好", "很高兴认识你", "谢谢", "谢谢你", "谢谢您", "多谢",
    "好的", "好", "嗯", "嗯嗯", "对", "对的", "是的", "是", "可以", "没问题", "明白", "明白了", "了解", "懂了",
    "行", "不错", "很好", "挺好", "好的谢谢", "请继续", "继续", "你继续说", "我们开始吧", "开始吧", "那我们开始",
    "准备好了吗", "准备好了", "稍等", "稍等一下", "不好意思", "抱歉", "能再说一遍吗", "请再说一遍",
    "下一个问题", "下一题", "今天就到这里", "就到这里", "辛苦了", "再见", "拜拜", "你有什么问题要问我们吗",
    "你有什么想问的吗", "你还有什么问题吗", "没有了",
], key=len, reverse=True)
# A short Chinese phrase ("好", "对", "是") is small talk only standing alone, not inside a word:
# "降维的好处" (a corpus question, asked tersely) is not "好" plus a name.
_CJK = "\u4e00-\u9fff"
_SHORT_CJK = [p for p in _SMALL_TALK if len(p) <= 2 and re.fullmatch(f"[{_CJK}]+", p)]
_SMALL_TALK_RE = re.compile(
    r"(?<![a-z])(?:" + "|".join(re.escape(p) for p in _SMALL_TALK if p not in _SHORT_CJK) + r")(?![a-z])"
    + f"|(?<![{_CJK}])(?:" + "|".join(re.escape(p) for p in _SHORT_CJK) + f")(?![{_CJK}])", re.IGNORECASE)
_SENTENCE_SPLIT = re.compile(r"(?<=[。！？!?；;\n])|(?<=\.)\s+")
MIN_CONTENT = 5  # content a turn needs beyond small talk: Latin letters and digits count 1, CJK 2

_QUESTION_START = re.compile(
    r"^\s*(?:so|and|now|ok|okay|next|then|well|first|second|finally|all right|alright)?[,\s]*"
    r"(?:what|how|why|when|which|who|where|can you|could you|would you|do you|did you|have you|is|are|does|"
    r"explain|describe|tell me|walk me|compare|give me|name|list|define)\b", re.IGNORECASE)
_QUESTION_ZH = re.compile(r"什么|怎么|怎样|如何|为什么|为何|哪些|哪个|是否|区别|讲讲|讲一下|说说|说一下|介绍|解释|谈谈|请问|吗[?？。]?$|呢[?？。]?$")


def _content_len(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9]", text)) + 2 * len(re.findall(r"[\u4e00-\u9fff]", text))


def is_small_talk(text: str) -> bool:
    """True for a turn with no interview content: greetings, audio checks, thanks, fillers.
    "不知道" / "pass" is not small talk: it is an answer (graded 0), and dropping it merged the next
    question into the previous one."""
    if is_dont_know(text):
        return False
    rest = _SMALL_TALK_RE.sub(" ", text)
    rest = re.sub(r"[\W_]+", " ", rest).strip()
    if _content_len(rest) < MIN_CONTENT:
        return True
    # "Hi Alexander" / "你好，张三丰": a short leftover after a greeting that asks nothing is a name.
    return (_content_len(rest) < 12 and _content_len(text) > _content_len(rest)
            and not re.search(r"[?？]", text) and not is_question_like(rest))


def clean_question(text: str) -> str:
    """The question without the small-talk sentences around it ("Great. Next: what is X?" keeps the
    second sentence). The whole text if every sentence is small talk."""
    kept = [s for s in _SENTENCE_SPLIT.split(text) if s and s.strip() and not is_small_talk(s)]
    return " ".join(s.strip() for s in kept).strip() or text.strip()


def is_question_like(text: str) -> bool:
    t = text.strip()
    if t.endswith(("?", "？")) or "?" in t[-40:] or "？" in t[-40:]:
        return True
    return bool(_QUESTION_START.match(t) or _QUESTION_ZH.search(t[:80]))


def _join(a: str, b: str) -> str:
    """Join turn texts: a space between Latin words, nothing between CJK (subtitle cues split a
    sentence anywhere), a newline after a sentence end."""
    if not a:
        return b
    if a[-1] in "。！？!?.;；\n":
        return a + "\n" + b
    if re.match(r"[\u4e00-\u9fff，、]", a[-1]) or re.match(r"[\u4e00-\u9fff，、]", b[:1]):
        return a + b
    return a + " " + b


def merge_turns(turns: list[Turn]) -> list[Turn]:
    merged: list[Turn] = []
    for t in turns:
        if merged and merged[-1].speaker == t.speaker:
            merged[-1].text = _join(merged[-1].text, t.text)
        else:
            merged.append(Turn(t.speaker, t.text, t.line, t.role))
    return merged


def drop_small_talk(turns: list[Turn]) -> tuple[list[Turn], int]:
    kept = [t for t in turns if not is_small_talk(t.text)]
    return kept, len(turns) - len(kept)


def pick_interviewer(turns: list[Turn], explicit: str | None = None,
                     matches: Callable[[str], bool] | None = None, name: str = "transcript") -> str:
    """The interviewer's speaker name (see the module docstring for the rule)."""
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    if explicit:
        want = explicit.strip().lower()
        hit = [s for s in speakers if s.lower() == want] or [s for s in speakers if s.lower().startswith(want)]
        if len(hit) != 1:
            what = "matches several speakers" if hit else "is not a speaker"
            raise TranscriptError(f"{name}: --interviewer {explicit!r} {what}.",
                                  f"Speakers in this file: {', '.join(speakers)}.")
        return hit[0]
    if len(speakers) < 2:
        raise TranscriptError(f"{name}: only one speaker ({speakers[0] if speakers else 'none'}); "
                              "cannot tell questions from answers.",
                              "Label turns (`Q:`/`A:` or `Name: text`) so two speakers appear.")
    stated = [t.speaker for t in turns if t.role == INTERVIEWER]
    if stated:
        return max(set(stated), key=stated.count)
    if any(t.role == CANDIDATE for t in turns):
        others = [s for s in speakers if not any(t.speaker == s and t.role == CANDIDATE for t in turns)]
        if len(others) == 1:
            return others[0]

    own = {s: [t.text for t in turns if t.speaker == s] for s in speakers}
    qlike = {s: sum(map(is_question_like, xs)) / len(xs) for s, xs in own.items()}
    ranked = sorted(qlike.values(), reverse=True)
    # Corpus matching costs an embedding per turn: only ask it when question marks do not decide.
    use_matches = matches is not None and ranked[0] - ranked[1] < 0.3

    def score(s: str) -> tuple[float, float]:
        xs = own[s][:20]
        m = sum(matches(clean_question(x)) for x in xs) / len(xs) if use_matches else 0.0
        return qlike[s] + m, -sum(map(len, own[s])) / len(own[s])

    return max(speakers, key=score)


@dataclass
class QAPair:
    question: str  # as asked, small-talk sentences removed
    answer: str
    line: int  # where the question starts
    answer_line: int | None
    asked_by: str
    answered_by: str | None


def pair_turns(turns: list[Turn], interviewer: str) -> list[QAPair]:
    """Turns must be merged and free of small talk. Candidate turns before the first question are an
    introduction, not an answer, and are ignored."""
    pairs: list[QAPair] = []
    for t in turns:
        if t.speaker == interviewer:
            pairs.append(QAPair(clean_question(t.text), "", t.line, None, t.speaker, None))
        elif pairs:
            p = pairs[-1]
            p.answer = _join(p.answer, t.text)
            p.answer_line = p.answer_line or t.line
            p.answered_by = p.answered_by or t.speaker
    return pairs


@dataclass
class Pairing:
    pairs: list[QAPair]
    interviewer: str
    speakers: list[str]
    small_talk: int  # turns dropped as small talk


def pair_transcript(turns: list[Turn], *, interviewer: str | None = None,
                    matches: Callable[[str], bool] | None = None, name: str = "transcript") -> Pairing:
    """Small-talk filter -> merge -> interviewer -> pairs. TranscriptError when there is no question."""
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    content, dropped = drop_small_talk(turns)
    merged = merge_turns(content)
    if not merged:
        raise TranscriptError(f"{name}: the transcript holds only small talk, no questions.",
                              "Score a transcript with interview questions and answers.")
    who = pick_interviewer(merged, interviewer, matches, name)
    pairs = pair_turns(merged, who)
    if not any(p.answer or is_question_like(p.question) for p in pairs):  # statements nobody answered
        raise TranscriptError(f"{name}: no questions found ({who} is taken as the interviewer but asks nothing).",
                              f"Name the interviewer with --interviewer (speakers: {', '.join(speakers)}).")
    return Pairing(pairs, who, speakers, dropped)
