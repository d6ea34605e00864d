"""Transcript readers: one per format, each returning `list[Turn]` (speaker, text, line).

Formats (`detect_format` picks one from the file name and content; `--input-format` overrides):

    text   Markdown / plain text: `Q:`/`A:`, `**Q:**`, `问:`/`答:`, `面试官:`/`候选人:`, `Name: text` lines;
           lines without a label continue the turn above (multi-line answers).
    vtt    WebVTT (webvtt-py): Zoom (`Name: text` in the cue) and Teams (`<v Name>text</v>`).
    srt    SubRip: `Name: text` or `[Name] text` at the start of a cue.
    otter  Otter.ai text export: a `Name  0:01` header line, then the text.
    json   Chat logs: `[{"role": ..., "content": ...}]` or `[{"speaker": ..., "text": ...}]`
           (also wrapped as {"messages": [...]}, and JSON Lines).

A Turn's `role` is "interviewer"/"candidate" when the label itself says so (`Q:`, `答:`, `面试官:`),
else None and pairing.pick_interviewer decides. Every problem is a TranscriptError naming the file
and, where it applies, the line.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bot.transcripts import TranscriptError

MAX_BYTES = 5 * 1024 * 1024
FORMATS = ("text", "vtt", "srt", "otter", "json")
ALIASES = {"md": "text", "markdown": "text", "txt": "text", "plain": "text", "webvtt": "vtt",
           "subrip": "srt", "jsonl": "json", "chat": "json"}
EXTENSIONS = {".md": "text", ".markdown": "text", ".txt": "text", ".text": "text", ".vtt": "vtt",
              ".srt": "srt", ".json": "json", ".jsonl": "json"}
INTERVIEWER, CANDIDATE = "interviewer", "candidate"


@dataclass
class Turn:
    speaker: str
    text: str
    line: int  # 1-based line in the file where the turn starts
    role: str | None = None  # set when the label names the role (Q:, 答:, 面试官:, JSON role)


# --- decoding -------------------------------------------------------------------------------------

def read_path(path: Path) -> str:
    """The file's text: size-checked, UTF-8 (BOM allowed) or UTF-16 with BOM, else GB18030."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise TranscriptError(f"{path}: the file is {size / 1024 / 1024:.1f} MB; transcripts over 5 MB "
                                  "are refused.", "Split it, or remove what is not the interview.")
        data = path.read_bytes()
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such file.", "Check the path.") from None
    except IsADirectoryError:
        raise TranscriptError(f"{path} is a folder.", "Pass the folder itself to score every transcript in it.") from None
    except PermissionError:
        raise TranscriptError(f"{path}: permission denied.", "Make the file readable.") from None
    return decode(data, str(path))


def decode(data: bytes, name: str) -> str:
    if len(data) > MAX_BYTES:
        raise TranscriptError(f"{name}: {len(data) / 1024 / 1024:.1f} MB; transcripts over 5 MB are refused.",
                              "Split it, or remove what is not the interview.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data:
        raise TranscriptError(f"{name}: this is a binary file, not a transcript.",
                              "Export the transcript as text (.vtt, .srt, .txt, .md or .json).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        utf8_error = e
    try:  # Chinese Windows tools still write GBK/GB18030
        return data.decode("gb18030")
    except UnicodeDecodeError:
        line = data[:utf8_error.start].count(b"\n") + 1
        raise TranscriptError(f"{name}:{line}: neither UTF-8 nor GB18030 text "
                              f"(byte 0x{data[utf8_error.start]:02x} at offset {utf8_error.start}).",
                              "Save the file as UTF-8.") from None


# --- format detection -----------------------------------------------------------------------------

TIMING_RE = re.compile(r"^\s*(\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}\s*-->\s*(\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}")
# Runs of spaces are matched possessively (`\s*+`) here and below: a run that a later part cannot use
# is not given back one space at a time, which made a long line of spaces take hours.
OTTER_HEADER_RE = re.compile(r"^(?P<name>\S.{0,48}?)\s{2,}+(?P<time>\d{1,2}:\d{2}(?::\d{2})?)\s*$")


def normalize_format(fmt: str) -> str:
    f = fmt.strip().lower().lstrip(".")
    f = ALIASES.get(f, f)
    if f not in FORMATS:
        raise TranscriptError(f"Unknown input format {fmt!r}.", f"Use one of: {', '.join(FORMATS)}.")
    return f


def detect_format(text: str, name: str = "") -> str:
    """Content first (a .txt can hold an Otter export), then the extension."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    if head[:1] in "[{":
        return "json"
    lines = text.splitlines()
    first = [ln for ln in lines[:8] if ln.strip()]
    if len(first) >= 2 and first[0].strip().isdigit() and TIMING_RE.match(first[1]) and "," in first[1]:
        return "srt"
    if sum(bool(OTTER_HEADER_RE.match(ln)) for ln in lines) >= 2 and not _has_role_labels(lines):
        return "otter"
    ext = EXTENSIONS.get(Path(name).suffix.lower())
    if ext in ("vtt", "srt", "json"):
        return ext  # e.g. a .vtt without its header: let the reader say what is wrong
    if ext == "text" or any(_label(ln) for ln in lines[:200]):
        return "text"
    raise TranscriptError(f"{name or 'input'}: unknown transcript format.",
                          f"Use one of {', '.join(FORMATS)} (--input-format), or label turns as `Q:`/`A:`.")


# --- speaker labels -------------------------------------------------------------------------------

_ROLE_LABELS = {
    INTERVIEWER: ("q", "question", "问", "问题", "提问", "面试官", "interviewer", "考官"),
    CANDIDATE: ("a", "answer", "答", "回答", "候选人", "candidate", "interviewee", "面试者", "应聘者", "求职者"),
}
_NUMBERED = re.compile(r"^(?P<base>q|a|question|answer|问|答|问题|回答)\s*\d{1,3}$")
_LEADING_TIME = re.compile(r"^\s*[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?[\])]?\s+")
_LABEL_RE = re.compile(  # `text` keeps trailing spaces: _label strips them (a lazy `.*?\s*$` is quadratic)
    r"^\s*+(?:#{1,6}\s++)?(?:[-*>]\s++)?(?:\*\*|__)?\s*+(?P<name>[^\s:：*_#>\-][^:：*]{0,40}?)\s*+(?:\*\*|__)?"
    r"\s*+[:：]\s*+(?:\*\*|__)?\s*+(?P<text>.*)")
_BRACKET_RE = re.compile(r"^\s*+[\[【](?P<name>[^\]】]{1,40})[\]】]\s*+[:：]?\s*+(?P<text>.*)")
_TAG_RE = re.compile(r"</?[a-zA-Z][^<>]*>")  # not [^>]*: each `<` of a `<a<a<a...` would scan to the end


def role_of(label: str) -> str | None:
    key = label.strip().lower()
    m = _NUMBERED.match(key)
    key = m["base"] if m else key
    for role, names in _ROLE_LABELS.items():
        if key in names:
            return role
    return None


def _name_shaped(name: str) -> bool:
    """A speaker name: short, no sentence punctuation; not `Note`-like prose or a URL scheme."""
    if len(name) > 40 or len(name.split()) > 4 or re.search(r"[.,。，!?！？;；()（）\"“”/]", name):
        return False
    if name[0].isdigit() or name.lower() in ("http", "https", "note", "e.g", "i.e", "ps", "tip", "warning"):
        return False
    return not re.fullmatch(r"[\u4e00-\u9fff]{7,}", name)  # long Chinese "labels" are sentences


def _label(line: str, brackets: bool = False) -> tuple[str, str] | None:
    """(name, rest) when the line starts with a speaker label."""
    line = _LEADING_TIME.sub("", line, count=1)
    m = (_BRACKET_RE.match(line) if brackets else None) or _LABEL_RE.match(line)
    if not m:
        return None
    name = m["name"].strip().strip("*_").strip()
    if not name or not (role_of(name) or _name_shaped(name)):
        return None
    return name, m["text"].rstrip()


def _has_role_labels(lines: list[str]) -> bool:
    return any((lab := _label(ln)) and role_of(lab[0]) for ln in lines[:400])


def _speakers(labels: list[str]) -> set[str]:
    """Which labels are speakers. Role labels (Q:, 答:) always are, and then only they are, so an
    answer line like `原因：...` stays text. Otherwise names used at least twice; in a tiny file, all."""
    roles = {lab for lab in labels if role_of(lab)}
    if roles:
        return roles
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    repeated = {lab for lab, n in counts.items() if n >= 2}
    if len(repeated) >= 2:
        return repeated
    return set(counts) if len(counts) <= 3 else repeated


def _turn(name: str, text: str, line: int, role: str | None = None) -> Turn:
    return Turn(speaker=name, text=text, line=line, role=role or role_of(name))


# --- readers --------------------------------------------------------------------------------------

def read_text(text: str, name: str) -> list[Turn]:
    lines = text.splitlines()
    labelled = [(_label(ln), i) for i, ln in enumerate(lines, 1)]
    speakers = _speakers([lab[0] for lab, _ in labelled if lab])
    turns: list[Turn] = []
    said: list[list[str]] = []  # each turn's lines, joined once: a str appended to per line is quadratic
    in_fence = False
    for (lab, lineno), raw in zip(labelled, lines):
        if raw.strip().startswith("```"):
            in_fence = not in_fence
        if lab and lab[0] in speakers and not in_fence:
            turns.append(_turn(lab[0], "", lineno))
            said.append([lab[1]])
        elif turns and not re.match(r"^\s*(#{1,6}\s|---+\s*$)", raw):  # headings, rules: not text
            said[-1].append(raw)
    # A role word in a label that is only a header ("**Q:**" then the text below it) leaves the
    # text on the next lines: already appended above.
    for t, lines_of_turn in zip(turns, said):
        t.text = "\n".join(lines_of_turn).strip()
    if not turns:
        raise TranscriptError(f"{name}: no speaker labels found.",
                              "Label each turn, e.g. `Q: ...` and `A: ...`, `问：`/`答：`, or `Name: text`.")
    return turns


def _cue_lines(text: str) -> list[int]:
    """Line numbers of the cue timing lines, in order: each cue's text starts on the next line."""
    return [i for i, ln in enumerate(text.splitlines(), 1) if "-->" in ln]


def _cue_turns(cues: list[tuple[str | None, str, int]], name: str) -> list[Turn]:
    """cues: (voice or None, text, line). Names come from the voice, else a `Name:`/`[Name]` prefix
    (accepted only for names used as speakers, see _speakers); an unnamed cue continues the last one."""
    prefixed = [(voice, _label(text.split("\n", 1)[0], brackets=True) if voice is None else None, text, line)
                for voice, text, line in cues]
    speakers = _speakers([lab[0] for _, lab, _, _ in prefixed if lab])
    turns: list[Turn] = []
    said: list[list[str]] = []  # each turn's cues, joined once (see read_text)
    for voice, lab, text, line in prefixed:
        text = text.strip()
        if voice:
            who = voice.strip()
        elif lab and lab[0] in speakers:
            who = lab[0]
            rest = text.split("\n", 1)
            text = (lab[1] + ("\n" + rest[1] if len(rest) > 1 else "")).strip()
        elif turns:
            said[-1].append(text)
            continue
        else:
            continue  # text before anyone is named
        if text:
            turns.append(_turn(who, "", line))
            said.append([text])
    for t, cues_of_turn in zip(turns, said):
        t.text = " ".join(cues_of_turn)
    if not turns:
        raise TranscriptError(f"{name}: the cues name no speakers.",
                              "Scoring needs speaker names: `Name: text` or `<v Name>` in the cues.")
    return turns


def read_vtt(text: str, name: str) -> list[Turn]:
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    try:
        captions = list(webvtt.from_string(text.lstrip("\ufeff")))
    except (MalformedFileError, MalformedCaptionError) as e:
        raise TranscriptError(f"{name}: not valid WebVTT ({e}).",
                              "The file must start with `WEBVTT` and hold `00:00:01.000 --> 00:00:02.000` cues.") from None
    timing = _cue_lines(text)
    cues = []
    for n, c in enumerate(captions):
        line = timing[n] + 1 if len(timing) == len(captions) else 0
        cues.append((c.voice, c.text, line))
    if not cues:
        raise TranscriptError(f"{name}: the WebVTT file has no cues.", "Export the transcript again.")
    return _cue_turns(cues, name)


# SRT, read a line at a time, as leniently as the srt library (its time delimiters, `-->` or `- >`,
# text after the times, no number line, blank lines inside a cue's text): the library's one regex
# over the whole file restarts at every position of text it cannot read, cubic on a run of digits
# (2,000 took 54 s) and quadratic on a run of spaces.
_SRT_TIME = r"[0-9]+[,.:，．。：][0-9]+[,.:，．。：][0-9]+(?:[,.:，．。：][0-9]*)?"
SRT_TIMING_RE = re.compile(rf"\s*+{_SRT_TIME} *+-[ -] *+> *+{_SRT_TIME}")
SRT_NUMBER_RE = re.compile(r"\s*+-?[0-9]+(?:\.[0-9]*)?\s*")
SRT_HINT = "Each cue is a number, a `00:00:01,000 --> 00:00:02,000` line and text."


def read_srt(text: str, name: str) -> list[Turn]:
    cues = _srt_cues(text.lstrip("\ufeff").splitlines(), name)
    if not cues:
        raise TranscriptError(f"{name}: the SRT file has no cues.", "Export the transcript again.")
    return _cue_turns([(None, _TAG_RE.sub("", said), line) for said, line in cues], name)


def _srt_cues(lines: list[str], name: str) -> list[tuple[str, int]]:
    """(text, line where it starts) of each cue: its timing line, the number line above it if any,
    and every line up to the next cue's first."""
    cues: list[tuple[int, int]] = []  # (first line: the number or the timing, the timing line), 0-based
    for i, ln in enumerate(lines):
        numbered = i > 0 and SRT_NUMBER_RE.fullmatch(lines[i - 1]) is not None and (not cues or cues[-1][1] < i - 1)
        if SRT_TIMING_RE.match(ln):
            cues.append((i - 1 if numbered else i, i))
        elif numbered and "-->" in ln:  # a cue whose times cannot be read: named by its number line
            number_line = i  # 1-based, as i is the 0-based index of the line below it
            raise TranscriptError(f"{name}:{number_line}: not valid SRT (`{ln.strip()[:60]}` are not the "
                                  "cue's times).", SRT_HINT)
    before = next((i for i, ln in enumerate(lines[:cues[0][0]] if cues else lines) if ln.strip()), None)
    if cues and before is not None:
        raise TranscriptError(f"{name}:{before + 1}: not valid SRT (text before the first cue).", SRT_HINT)
    ends = [first for first, _ in cues[1:]] + [len(lines)]
    return [("\n".join(lines[timing + 1:end]).strip(), timing + 2) for (_, timing), end in zip(cues, ends)]


def read_otter(text: str, name: str) -> list[Turn]:
    turns: list[Turn] = []
    lines: list[list[str]] = []  # each turn's, joined once: a str appended to per line is quadratic
    for i, ln in enumerate(text.splitlines(), 1):
        m = OTTER_HEADER_RE.match(ln)
        if m:
            turns.append(_turn(m["name"].strip(), "", i))
            lines.append([])
        elif turns and ln.strip():
            lines[-1].append(ln.strip())
    for turn, said in zip(turns, lines):
        turn.text = "\n".join(said)
    turns = [t for t in turns if t.text]
    if not turns:
        raise TranscriptError(f"{name}: no Otter `Name  0:01` headers with text under them.",
                              "Export from Otter as text with speaker names and timestamps.")
    return turns


_JSON_SPEAKER = ("speaker", "role", "name", "author", "from", "sender", "user")
_JSON_TEXT = ("text", "content", "message", "body", "utterance")
_JSON_WRAPPERS = ("messages", "transcript", "turns", "conversation", "dialogue", "items")
_CHAT_ROLES = {"assistant": INTERVIEWER, "interviewer": INTERVIEWER, "bot": INTERVIEWER,
               "user": CANDIDATE, "human": CANDIDATE, "candidate": CANDIDATE}


def _json_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        return "\n".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in value)
    return "" if value is None else str(value)


def _element_lines(text: str, start: int, count: int) -> list[int]:
    """Line of each element of the JSON array whose `[` is at `start` (JSON is already valid).
    Newlines are counted on from the previous element, not from the file's start (quadratic)."""
    dec, lines, i = json.JSONDecoder(), [], start + 1
    line, counted = 1, 0
    for _ in range(count):
        while text[i] in " \t\r\n,":
            i += 1
        line += text.count("\n", counted, i)
        counted = i
        lines.append(line)
        _, i = dec.raw_decode(text, i)
    return lines


def read_json(text: str, name: str) -> list[Turn]:
    body = text.lstrip("\ufeff")
    try:
        data = json.loads(body)
        array_at = body.index("[") if isinstance(data, list) else None
    except json.JSONDecodeError as e:
        rows = [ln for ln in body.splitlines() if ln.strip()]
        if e.msg == "Extra data" and all(r.lstrip().startswith("{") for r in rows):
            return _json_messages(_jsonl(body, name), name)  # JSON Lines
        raise TranscriptError(f"{name}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno}).",
                              "Fix the JSON, or pick another --input-format.") from None
    except RecursionError:
        raise _too_deep(name) from None
    if isinstance(data, dict):
        key = next((k for k in _JSON_WRAPPERS if isinstance(data.get(k), list)), None)
        if key is None:
            raise TranscriptError(f"{name}: JSON object without a list of messages.",
                                  "Use a list of messages, or wrap it as {\"messages\": [...]}.")
        data = data[key]
        m = re.search(r'"%s"\s*:\s*\[' % re.escape(key), body)
        array_at = m.end() - 1 if m else None
    if not isinstance(data, list):
        raise TranscriptError(f"{name}: the JSON is {json.dumps(data)[:40]}, not a list of messages.",
                              'Use [{"role": ..., "content": ...}, ...], or wrap it as {"messages": [...]}.')
    try:
        lines = _element_lines(body, array_at, len(data)) if array_at is not None else [0] * len(data)
    except (IndexError, ValueError, json.JSONDecodeError):
        lines = [0] * len(data)
    return _json_messages(list(zip(data, lines)), name)


def _jsonl(body: str, name: str) -> list[tuple[object, int]]:
    out = []
    for i, ln in enumerate(body.splitlines(), 1):
        if ln.strip():
            try:
                out.append((json.loads(ln), i))
            except json.JSONDecodeError as e:
                raise TranscriptError(f"{name}:{i}: not valid JSON ({e.msg}).", "Fix the line.") from None
            except RecursionError:
                raise _too_deep(f"{name}:{i}") from None
    return out


def _too_deep(where: str) -> TranscriptError:
    return TranscriptError(f"{where}: JSON nested too deeply for a chat log.",
                           "Export the chat again: a list of messages, each with a speaker and a text.")


def _json_messages(items: list[tuple[object, int]], name: str) -> list[Turn]:
    turns: list[Turn] = []
    for n, (msg, line) in enumerate(items, 1):
        where = f"{name}:{line}" if line else f"{name} (message {n})"
        if not isinstance(msg, dict):
            raise TranscriptError(f"{where}: a message must be an object with speaker/role and text/content.",
                                  'Use [{"role": "assistant", "content": "..."}] or [{"speaker": "...", "text": "..."}].')
        who_key = next((k for k in _JSON_SPEAKER if isinstance(msg.get(k), str) and msg[k].strip()), None)
        text_key = next((k for k in _JSON_TEXT if k in msg), None)
        if who_key is None or text_key is None:
            raise TranscriptError(f"{where}: message without a speaker ({'/'.join(_JSON_SPEAKER[:3])}) "
                                  f"or text ({'/'.join(_JSON_TEXT[:2])}).",
                                  'Use [{"role": ..., "content": ...}] or [{"speaker": ..., "text": ...}].')
        who = msg[who_key].strip()
        if who.lower() in ("system", "tool", "function", "developer"):
            continue  # instructions to a chat model, not part of the interview
        text = _json_text(msg[text_key]).strip()
        if text:
            role = _CHAT_ROLES.get(who.lower()) if who_key == "role" else role_of(who)
            turns.append(Turn(who, text, line, role))
    if not turns:
        raise TranscriptError(f"{name}: the JSON holds no messages with text.", "Export the chat again.")
    return turns


READERS = {"text": read_text, "vtt": read_vtt, "srt": read_srt, "otter": read_otter, "json": read_json}


def read_turns(text: str, name: str, input_format: str | None = None) -> tuple[list[Turn], str]:
    """Turns of a transcript and the format used. TranscriptError when empty or unreadable."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise TranscriptError(f"{name}: over 5 MB; transcripts over 5 MB are refused.",
                              "Split it, or remove what is not the interview.")
    if not text.strip():
        raise TranscriptError(f"{name}: the file is empty.", "Pass a transcript with questions and answers.")
    fmt = normalize_format(input_format) if input_format else detect_format(text, name)
    return READERS[fmt](text, name), fmt
