"""Transcript readers: every format, labels, line numbers, decoding and bad input."""
from __future__ import annotations

import json
import re
import time
import timeit
from pathlib import Path

import pytest

from bot.errors import UsageError
from bot.transcripts import TranscriptError
from bot.transcripts.readers import (CANDIDATE, INTERVIEWER, MAX_BYTES, decode, detect_format, normalize_format,
                                     read_path, read_turns)

DATA = Path(__file__).resolve().parent / "data" / "transcripts"


def turns_of(name: str, fmt: str | None = None):
    path = DATA / name
    return read_turns(read_path(path), str(path), fmt)


@pytest.mark.parametrize("name, fmt, speakers", [
    ("zoom_zh.vtt", "vtt", ["王老师", "李明"]),
    ("teams_en.vtt", "vtt", ["Sarah Chen", "Tom Becker"]),
    ("smalltalk.md", "text", ["Q", "A"]),
    ("panel_zh.md", "text", ["面试官", "候选人"]),
    ("names.txt", "text", ["Alice", "Bob"]),
    ("zoom.srt", "srt", ["Anna", "David"]),
    ("otter.txt", "otter", ["Speaker 1", "Speaker 2"]),
    ("chat_roles.json", "json", ["assistant", "user"]),
    ("chat_speakers.json", "json", ["Interviewer", "Candidate"]),
])
def test_every_sample_is_detected_and_read(name, fmt, speakers):
    turns, detected = turns_of(name)
    assert detected == fmt
    assert list(dict.fromkeys(t.speaker for t in turns)) == speakers
    assert all(t.text.strip() for t in turns)
    assert all(t.line > 0 for t in turns), "every turn knows its line"


def test_zoom_vtt_name_prefix_and_cue_lines():
    turns, _ = turns_of("zoom_zh.vtt")
    lines = (DATA / "zoom_zh.vtt").read_text("utf-8").splitlines()
    first_q = next(t for t in turns if "超参数" in t.text)
    assert first_q.speaker == "王老师"
    assert "王老师:" not in first_q.text  # the prefix is the speaker, not text
    assert lines[first_q.line - 1].startswith("王老师: 好的，那我们开始吧")
    assert len([t for t in turns if t.speaker == "李明"]) == 8  # one per cue: merging is pairing's job


def test_teams_vtt_voice_spans_strip_tags_and_keep_multiline_cues():
    turns, _ = turns_of("teams_en.vtt")
    assert turns[2].speaker == "Sarah Chen" and turns[2].text.endswith("batch normalization?")
    assert "<v" not in " ".join(t.text for t in turns) and "</v>" not in " ".join(t.text for t in turns)
    assert "cannot rely on single units" in turns[3].text  # second line of a two-line cue


def test_srt_bracket_and_colon_names_and_unnamed_continuation():
    turns, _ = turns_of("zoom.srt")
    assert [t.speaker for t in turns] == ["Anna", "David", "Anna", "David", "Anna", "David"]
    assert turns[2].text == "什么是分组卷积？它有什么好处？"
    # cue 5 names nobody: it continues David's answer
    assert "AlexNet" in turns[3].text and turns[3].text.startswith("分组卷积")


def test_otter_headers_and_multiline_text():
    turns, _ = turns_of("otter.txt")
    assert turns[3].speaker == "Speaker 2" and turns[3].line == 10
    assert "ReLU is common" in turns[3].text


def test_json_roles_skip_system_and_state_roles():
    turns, _ = turns_of("chat_roles.json")
    assert all("You are an interviewer" not in t.text for t in turns)
    assert turns[0].role == INTERVIEWER and turns[1].role == CANDIDATE
    assert turns[0].line == 3  # the line of the message object in the file


def test_json_speaker_text_wrapped_in_messages():
    turns, _ = turns_of("chat_speakers.json")
    assert len(turns) == 4 and turns[0].role == INTERVIEWER and turns[1].role == CANDIDATE


def test_json_lines_and_content_parts():
    text = "\n".join(json.dumps(m) for m in [
        {"speaker": "Ann", "text": "What is dropout?"},
        {"speaker": "Ben", "content": [{"type": "text", "text": "It zeroes"}, {"type": "text", "text": "units."}]},
    ])
    turns, fmt = read_turns(text, "chat.jsonl")
    assert fmt == "json" and turns[1].text == "It zeroes\nunits." and turns[1].line == 2


def test_markdown_label_styles():
    text = "\n".join([
        "# Practice",
        "**Q1:** What is overfitting?",
        "**A1:** The model memorises noise.",
        "Reason: too many parameters.",  # a colon inside an answer is not a speaker
        "",
        "问：什么是过拟合？",
        "答：训练误差低而测试误差高。",
        "**Q:**",
        "What is dropout?",
        "A: random zeroing",
    ])
    turns, fmt = read_turns(text, "notes.md")
    assert fmt == "text"
    assert [t.role for t in turns] == [INTERVIEWER, CANDIDATE, INTERVIEWER, CANDIDATE, INTERVIEWER, CANDIDATE]
    assert turns[1].text == "The model memorises noise.\nReason: too many parameters."
    assert turns[4].text == "What is dropout?" and turns[4].line == 8


def test_generic_names_need_to_repeat():
    text = "Intro: our mock interview\nKai: What is a kernel?\nLi: A similarity function.\nKai: Why use it?\nLi: No explicit mapping."
    turns, _ = read_turns(text, "n.txt")
    assert [t.speaker for t in turns] == ["Kai", "Li", "Kai", "Li"]


def test_gb18030_file_is_decoded(tmp_path):
    p = tmp_path / "gbk.md"
    p.write_bytes("问：什么是过拟合？\n答：训练误差低，测试误差高。\n".encode("gb18030"))
    turns, _ = read_turns(read_path(p), str(p))
    assert turns[0].text == "什么是过拟合？"


def test_utf16_with_bom_is_decoded():
    assert decode("Q: hi?\nA: yes".encode("utf-16"), "x") == "Q: hi?\nA: yes"


def test_undecodable_bytes_name_file_and_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"Q: fine\nA: \x81\xff\xfe broken\n")
    with pytest.raises(TranscriptError, match=r"bad.txt:2: neither UTF-8 nor GB18030") as e:
        read_path(p)
    assert e.value.exit_code == 2 and isinstance(e.value, UsageError)


def test_binary_file_is_refused(tmp_path):
    p = tmp_path / "x.vtt"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    with pytest.raises(TranscriptError, match="binary file"):
        read_path(p)


def test_file_over_5mb_is_refused_before_reading(tmp_path):
    p = tmp_path / "huge.md"
    with open(p, "wb") as f:
        f.truncate(MAX_BYTES + 1)
    with pytest.raises(TranscriptError, match=r"huge.md: the file is 5.0 MB; transcripts over 5 MB are refused"):
        read_path(p)


@pytest.mark.parametrize("text", ["", "   \n\n"])
def test_empty_file(text):
    with pytest.raises(TranscriptError, match="empty.md: the file is empty"):
        read_turns(text, "empty.md")


def test_missing_file():
    with pytest.raises(TranscriptError, match="no such file"):
        read_path(Path("/nonexistent/x.vtt"))


def test_unknown_format_names_the_file():
    with pytest.raises(TranscriptError, match=r"server.log: unknown transcript format"):
        read_turns("just some prose without any speakers\nand more prose", "server.log")
    with pytest.raises(TranscriptError, match="Unknown input format 'xml'"):
        normalize_format("xml")
    assert normalize_format("Markdown") == "text" and normalize_format(".VTT") == "vtt"


def test_invalid_json_names_the_line():
    with pytest.raises(TranscriptError, match=r"chat.json:3: not valid JSON"):
        read_turns('[\n {"role": "user", "content": "a"},\n {"role": }\n]', "chat.json")


def test_json_message_without_text_names_the_line():
    with pytest.raises(TranscriptError, match=r"chat.json:3: message without a speaker"):
        read_turns('[\n {"role": "user", "content": "a"},\n {"role": "assistant"}\n]', "chat.json")


def test_vtt_without_header_is_a_clear_error():
    with pytest.raises(TranscriptError, match="x.vtt: not valid WebVTT"):
        read_turns("1\n00:00:01.000 --> 00:00:02.000\nA: hi\n", "x.vtt")


def test_vtt_without_names():
    with pytest.raises(TranscriptError, match="the cues name no speakers"):
        read_turns("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello there\n", "x.vtt", "vtt")


def test_broken_srt_names_the_line():
    text = "1\n00:00:01,000 --> 00:00:02,000\nAnn: hi\n\n2\n00:00:0x,000 --> 00:00:02,000\nBen: yo\n"
    with pytest.raises(TranscriptError, match=r"x.srt:5: not valid SRT"):
        read_turns(text, "x.srt", "srt")


def test_detect_format_by_content_beats_extension():
    assert detect_format("WEBVTT\n\n", "a.txt") == "vtt"
    assert detect_format("Speaker 1  0:01\nhi\n\nSpeaker 2  0:05\nyo\n", "a.txt") == "otter"
    assert detect_format("1\n00:00:01,000 --> 00:00:02,000\nAnn: hi\n", "a.txt") == "srt"
    assert detect_format("Q: a?\nA: b", "notes") == "text"


def _best_time(fn, *args) -> float:
    """CPU seconds of the fastest of 3 runs: the CPU this process got, not how busy the machine is."""
    return min(timeit.repeat(lambda: fn(*args), number=1, repeat=3, timer=time.process_time))


def _chat(n: int) -> str:
    return json.dumps([{"role": "assistant" if i % 2 else "user", "content": f"answer number {i} about dropout"}
                       for i in range(n)], indent=1)


def test_json_line_numbers_are_linear_in_the_file_size():
    """Each message's line used to be counted from the file's start: a 4 MB chat took minutes."""
    small, large = _chat(12_000), _chat(48_000)
    assert len(large.encode()) < MAX_BYTES
    assert read_turns(large, "big.json")[0][-1].line == large.count("\n") - 3  # the last `{`: 4 lines from the end
    assert _best_time(read_turns, large, "big.json") < 8 * _best_time(read_turns, small, "small.json")


def test_json_line_numbers_of_every_layout_are_where_each_message_starts():
    parts, starts = ['{"messages":\n  [\n'], []
    for i in range(40):
        starts.append(sum(p.count("\n") for p in parts) + 1)
        msg = {"speaker": "Ann" if i % 2 else "Ben", "text": f"turn {i}\nstill {i}"}
        parts.append(json.dumps(msg, indent=i % 3 or None))  # some span lines, some do not
        parts.append([", ", ",\n", "\n\n ,  ", ",\t"][i % 4] if i < 39 else "\n]}")
    text = "".join(parts)
    assert [t.line for t in read_turns(text, "c.json")[0]] == starts
    broken = text.replace('"speaker": "Ben", "text": "turn 36', '"speaker": "Ben", "txt": "turn 36')
    with pytest.raises(TranscriptError, match=rf"c.json:{starts[36]}: message without a speaker"):
        read_turns(broken, "c.json")


@pytest.mark.parametrize("text, says", [
    ("null", "the JSON is null, not a list of messages"),
    ('"just a string"', 'the JSON is "just a string", not a list of messages'),
    ("[" * 100_000, "JSON nested too deeply"),
    ('{"speaker": "Ann", "text": "hi"}\n' + '{"a": ' * 100_000, "chat.json:2: JSON nested too deeply"),  # JSON Lines
])
def test_json_that_is_no_list_of_messages_is_a_clear_error(text, says):
    """Found by tests/test_fuzz.py: `null` was a TypeError, deep nesting a RecursionError."""
    with pytest.raises(TranscriptError, match=re.escape(says)):
        read_turns(text, "chat.json", "json")


def test_srt_is_read_as_leniently_as_before_and_every_cue_knows_its_line():
    """The srt library's arrows (`- >`), cues without a number and a missing blank line; its cues
    were line 0 when a timing line had no `-->`."""
    text = ("1\n00:00:01,000 - > 00:00:02,000\nAnn: What is dropout?\n\n"
            "00:00:03.000 --> 00:00:04.000 X1:40\nBen: It zeroes units\nat random.\n"
            "3\n00:00:05,000 --> 00:00:06,000\nAnn: Why?\n")
    turns, _ = read_turns(text, "x.srt", "srt")
    assert [(t.speaker, t.text, t.line) for t in turns] == [
        ("Ann", "What is dropout?", 3), ("Ben", "It zeroes units\nat random.", 6), ("Ann", "Why?", 10)]
