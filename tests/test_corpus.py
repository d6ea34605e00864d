from pathlib import Path

import pytest

from bot.corpus import check_files, load_items
from bot.errors import CorpusError
from tests.conftest import MAIN_CORPUS, MINI_CORPUS

GOOD = """---
name: t
language: en
domain: ml
---

## a-1: What is a tensor?
tags: basics
difficulty: easy

### Answer
A multi-dimensional array.

### Key points
- A tensor is a multi-dimensional array
- It has a shape
- It has a dtype
"""


def write(tmp_path: Path, text: str, name: str = "c.md") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_corpus_is_valid_and_curated():
    items = load_items([MAIN_CORPUS])
    assert [i.id for i in items] == [f"dl-{n:03d}" for n in range(1, 22)]
    assert all(3 <= len(i.key_points) <= 8 for i in items)
    by = {i.id: i for i in items}
    assert "http" not in by["dl-019"].answer and "非线性" in by["dl-019"].answer  # real answer, not a URL
    assert "加快" in by["dl-009"].answer and "几块" not in by["dl-009"].answer
    assert "勘误" in by["dl-002"].note and "勘误" in by["dl-016"].note
    assert "低维空间转换到高维空间" not in by["dl-016"].answer


def test_good_file_parses(tmp_path):
    [item] = load_items([write(tmp_path, GOOD)])
    assert item.id == "a-1" and item.question == "What is a tensor?"
    assert item.key_points == ["A tensor is a multi-dimensional array", "It has a shape", "It has a dtype"]
    assert item.tags == ["basics"] and item.difficulty == "easy" and item.language == "en"
    assert item.source.endswith("c.md:7")


@pytest.mark.parametrize("mutate, line, message", [
    (lambda t: t.replace("difficulty: easy", "difficulty: brutal"), 9, "difficulty `brutal`"),
    (lambda t: t.replace("- It has a dtype\n", ""), 14, "has 2 key points"),
    (lambda t: t.replace("### Answer", "### Solution"), 11, "unknown section `Solution`"),
    (lambda t: t.replace("## a-1: What", "## A 1 What"), 7, "item heading must be"),
    (lambda t: t.replace("language: en\n", ""), 1, "lacks `language:`"),
    (lambda t: t.replace("tags: basics\n", "tags: basics\nowner: me\n"), 9, "unexpected line"),
    (lambda t: t.replace("A multi-dimensional array.", ""), 11, "the answer is empty"),
])
def test_problems_name_file_and_line(tmp_path, mutate, line, message):
    p = write(tmp_path, mutate(GOOD))
    _, problems = check_files([p])
    assert any(pr.startswith(f"{p}:{line}: ") and message in pr for pr in problems), problems


def test_duplicate_ids_across_files(tmp_path):
    write(tmp_path, GOOD, "a.md")
    write(tmp_path, GOOD, "b.md")
    with pytest.raises(CorpusError) as e:
        load_items([tmp_path])
    assert "duplicate id `a-1`" in str(e.value) and "a.md:7" in str(e.value)


def test_non_utf8_file_is_reported(tmp_path):
    p = tmp_path / "gbk.md"
    p.write_bytes(GOOD.replace("tensor", "张量").encode("gb18030"))
    _, problems = check_files([p])
    assert problems and "not UTF-8" in problems[0]


def test_content_hash_changes_with_edits(tmp_path):
    [a] = load_items([write(tmp_path, GOOD)])
    [b] = load_items([write(tmp_path, GOOD.replace("It has a shape", "It has a shape (dims)"))])
    assert a.content_hash() != b.content_hash()


def test_mini_corpus_valid():
    assert len(load_items([MINI_CORPUS])) == 3


def test_translated_key_points_are_read_one_by_one(tmp_path):
    from bot.corpus import check_files

    base = ("---\nname: t\nlanguage: zh\ndomain: x\n---\n\n## t-1: 问题？\ntags: a\ndifficulty: easy\n\n"
            "### Answer\n答案。\n\n### Key points\n- 要点一\n- 要点二\n- 要点三\n\n")
    good = tmp_path / "good.md"
    good.write_text(base + "### Key points (en)\n- point one\n- point two\n- point three\n", encoding="utf-8")
    files, problems = check_files([good])
    assert problems == [] and files[0].items[0].translations == {"en": ["point one", "point two", "point three"]}
    bad = tmp_path / "bad.md"
    bad.write_text(base + "### Key points (en)\n- point one\n", encoding="utf-8")
    _, problems = check_files([bad])
    assert len(problems) == 1 and "must translate the 3 key points one by one" in problems[0] and ":19:" in problems[0]


def test_aspects_are_read_one_per_key_point_and_checked(tmp_path):
    base = ("---\nname: t\nlanguage: zh\ndomain: x\n---\n\n## t-1: 问题？\ntags: a\ndifficulty: easy\n\n"
            "### Answer\n答案。\n\n### Key points\n- 要点一\n- 要点二\n- 要点三\n\n")
    files, problems = check_files([write(tmp_path, base + "### Aspects\n- 方面一\n- 方面二\n- 方面三\n\n"
                                                          "### Aspects (en)\n- one\n- two\n- three\n", "good.md")])
    item = files[0].items[0]
    assert problems == [] and item.aspects == {"zh": ["方面一", "方面二", "方面三"], "en": ["one", "two", "three"]}
    assert item.aspect(1, "en") == "two" and item.aspect(1, "fr") == "方面二"
    _, problems = check_files([write(tmp_path, base + "### Aspects\n- 方面一\n", "short.md")])
    assert len(problems) == 1 and "has 1 lines; write one per key point (3)" in problems[0] and ":19:" in problems[0]
    _, problems = check_files([write(tmp_path, base + "### Aspects (en)\n- one\n- one\n- two\n", "twice.md")])
    assert len(problems) == 1 and "same aspect twice" in problems[0]
    _, problems = check_files([write(tmp_path, base + "### Aspects (en)\n- one\n- two\n- " + "x" * 61 + "\n",
                                     "long.md")])
    assert len(problems) == 1 and "at most 60 characters" in problems[0]


def test_a_reference_in_another_language_is_read_and_checked(tmp_path):
    base = ("---\nname: t\nlanguage: zh\ndomain: x\n---\n\n## t-1: 问题？\ntags: a\ndifficulty: easy\n\n"
            "### Answer\n答案。\n\n### Key points\n- 要点一\n- 要点二\n- 要点三\n\n")
    good = write(tmp_path, base + "### Answer (en)\nThe answer,\nin English.\n", "good.md")
    files, problems = check_files([good])
    assert problems == [] and files[0].items[0].answers == {"en": "The answer,\nin English."}
    [plain] = load_items([write(tmp_path, base, "plain.md")])
    assert plain.answers == {} and plain.content_hash() != files[0].items[0].content_hash()
    _, problems = check_files([write(tmp_path, base + "### Answer (zh)\n另一个答案。\n", "own.md")])
    assert len(problems) == 1 and "pack's own language" in problems[0] and ":19:" in problems[0]
    _, problems = check_files([write(tmp_path, base + "### Answer (en)\n\n### Note\nx\n", "empty.md")])
    assert len(problems) == 1 and "`### Answer (en)` is empty" in problems[0]


def test_the_shipped_packs_cover_both_languages_and_every_area():
    from bot.corpus import check_files
    from tests.conftest import PACKS

    parsed, problems = check_files([PACKS])
    assert problems == []
    packs = {cf.meta["name"]: cf for cf in parsed}
    assert len(packs) >= 9 and sum(len(cf.items) for cf in parsed) >= 200
    assert {cf.meta["language"] for cf in parsed} == {"zh", "en"}
    for name in ("ml-fundamentals-en", "ml-fundamentals-zh", "deep-learning-en", "nlp-llm-en", "nlp-llm-zh",
                 "algorithms-zh", "algorithms-en", "python-en", "sql-databases-en", "system-design-en",
                 "behavioural-en", "behavioural-zh"):
        assert len(packs[name].items) >= 15, name
    for cf in parsed:
        for item in cf.items:
            assert 4 <= len(item.key_points) <= 8 or cf.meta["name"] == "deep-learning-zh", item.id
            assert item.tags and item.difficulty in ("easy", "medium", "hard")
            if cf.meta["language"] == "zh":  # English answers are matched against English key points
                assert len(item.translations.get("en", [])) == len(item.key_points), item.id
                if cf.meta["domain"] != "behavioural":  # and compared with an English reference
                    assert len(item.answers.get("en", "")) > len(item.answer) / 2, item.id


TWIN = GOOD.replace("name: t", "name: u").replace("## a-1: What is a tensor?", "## b-1: 什么是张量？").replace(
    "difficulty: easy", "difficulty: easy\nsame as: a-1", 1)


def test_same_as_is_mutual_among_the_loaded_items_and_dropped_when_its_twin_is_not(tmp_path):
    a, b = write(tmp_path, GOOD, "a.md"), write(tmp_path, TWIN, "b.md")
    items = {i.id: i for i in load_items([a, b])}
    assert items["b-1"].same_as == ["a-1"] and items["a-1"].same_as == ["b-1"]  # declared on one side
    assert load_items([b])[0].same_as == []  # --corpus with one pack of the pair
    h = load_items([a])[0].content_hash()
    assert items["a-1"].content_hash() == h  # a twin changes neither the index's passages nor a grade


@pytest.mark.parametrize("value", ["b-1", "Not An Id"])
def test_same_as_must_name_another_item(tmp_path, value):
    p = write(tmp_path, TWIN.replace("same as: a-1", f"same as: {value}"))
    _, problems = check_files([p])
    assert problems == [f"{p}:10: `same as: {value}` must name another item's id"]
