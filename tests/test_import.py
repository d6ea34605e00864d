"""`interview corpus import`: the formats people keep questions in become a pack in the data dir;
bad input is reported as file:line and nothing is written."""
import json
import re
import sqlite3
import time
import timeit
import zipfile

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.corpus import load_items

ANSWER_EN = ("Overfitting is when a model fits noise in the training data. It scores well on training data "
             "but poorly on new data. Regularization, more data and early stopping reduce it.")


@pytest.fixture
def runner():
    return CliRunner()


def run(runner, *args):
    return runner.invoke(app, ["corpus", "import", *map(str, args)])


def imported(settings, name):
    return load_items([settings.packs_dir / f"{name}.md"])


def test_csv_with_a_header_keeps_key_points_tags_and_difficulty(runner, settings, tmp_path):
    f = tmp_path / "cards.csv"
    f.write_text('Question,Answer,Key points,Tags,Difficulty\n'
                 f'What is overfitting?,"{ANSWER_EN}","fits noise; poor on new data; regularization helps",ml,easy\n'
                 'What does a hash table cost per lookup?,"O(1) on average, O(n) in the worst case.",,"algo; hashing",\n',
                 encoding="utf-8")
    res = run(runner, f, "--pack", "my-cards", "--no-model")
    assert res.exit_code == 0, res.output
    items = imported(settings, "my-cards")
    assert [i.id for i in items] == ["my-cards-001", "my-cards-002"]
    assert items[0].key_points == ["fits noise", "poor on new data", "regularization helps"] and items[0].status == ""
    assert items[0].tags == ["ml"] and items[0].difficulty == "easy" and items[0].language == "en"
    assert items[1].status == "draft" and items[1].key_points and items[1].tags == ["algo", "hashing"]
    listed = runner.invoke(app, ["corpus", "list", "--packs", "--json"])  # the data dir's packs join the shipped ones
    assert {"name": "my-cards", "items": 2}.items() <= next(p for p in json.loads(listed.stdout)["packs"]
                                                          if p["name"] == "my-cards").items()


def test_tsv_without_a_header_and_chinese_is_detected(runner, settings, tmp_path):
    f = tmp_path / "zh.tsv"
    f.write_text("什么是过拟合？\t模型在训练集上表现很好，但在测试集上表现差。可以用正则化、早停和更多数据缓解。\n"
                 "梯度消失是什么？\t深层网络反向传播时梯度逐层变小，前面的层几乎不更新。可以用 ReLU、残差连接和 BN 缓解。\n",
                 encoding="utf-8")
    res = run(runner, f, "--pack", "zh-notes", "--no-model")
    assert res.exit_code == 0, res.output
    items = imported(settings, "zh-notes")
    assert len(items) == 2 and items[0].language == "zh" and items[0].question == "什么是过拟合？"


def test_json_and_jsonl_report_every_bad_line_and_write_nothing(runner, settings, tmp_path):
    good = {"question": "What is overfitting?", "answer": ANSWER_EN}
    f = tmp_path / "qs.jsonl"
    f.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"question": "No answer?"}) + "\n"
                 + json.dumps({**good, "difficulty": "extreme"}) + "\n", encoding="utf-8")
    res = run(runner, f, "--pack", "broken", "--no-model")
    assert res.exit_code == 1
    assert f"{f}:2: not valid JSON" in res.output and f"{f}:3: no answer" in res.output
    assert f"{f}:4: difficulty 'extreme'" in res.output
    assert not (settings.packs_dir / "broken.md").exists()
    j = tmp_path / "qs.json"
    j.write_text(json.dumps({"items": [good, {"question": "Q?", "answer": "A.", "key_points": ["one"]}]}, indent=2),
                 encoding="utf-8")
    res = run(runner, j, "--pack", "broken", "--no-model")
    assert res.exit_code == 1 and f"{j}:7: 1 key points" in res.output, res.output
    j.write_text(json.dumps([good, {**good, "question": "Why regularize?", "tags": ["ml", "reg"]}]), encoding="utf-8")
    assert run(runner, j, "--pack", "fine", "--no-model").exit_code == 0
    assert [i.tags for i in imported(settings, "fine")][1] == ["ml", "reg"]


def test_anki_text_export_strips_html_and_reads_the_tags_column(runner, settings, tmp_path):
    f = tmp_path / "deck.txt"
    f.write_text("#separator:tab\n#html:true\n#tags column:3\n"
                 f"What is <b>overfitting</b>?\t{ANSWER_EN}<br>See also: bias.\tml deep-learning\n", encoding="utf-8")
    res = run(runner, f, "--pack", "anki-txt", "--no-model")
    assert res.exit_code == 0, res.output
    (item,) = imported(settings, "anki-txt")
    assert item.question == "What is overfitting?" and "See also: bias." in item.answer and "<" not in item.answer
    assert item.tags == ["ml", "deep-learning"] and item.status == "draft"


def make_apkg(path, notes):
    """A deck as Anki writes it: a zip holding the collection as SQLite (fields joined by \\x1f)."""
    db_path = path.with_suffix(".anki2")
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, guid TEXT, mid INTEGER, mod INTEGER, usn INTEGER, "
               "tags TEXT, flds TEXT, sfld TEXT, csum INTEGER, flags INTEGER, data TEXT)")
    for n, (front, back, tags) in enumerate(notes, 1):
        db.execute("INSERT INTO notes VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (1000 + n, f"g{n}", 1, 0, 0, tags, f"{front}\x1f{back}", front, 0, 0, ""))
    db.commit()
    db.close()
    with zipfile.ZipFile(path, "w") as z:
        z.write(db_path, "collection.anki2")
        z.writestr("media", "{}")


def test_an_apkg_deck_is_imported_and_a_note_without_a_back_is_named(runner, settings, tmp_path):
    deck = tmp_path / "deck.apkg"
    make_apkg(deck, [("What is overfitting?", ANSWER_EN, " ml "), ("Define <i>recall</i>", "TP / (TP + FN): the "
                      "share of real positives the model finds.", "metrics")])
    res = run(runner, deck, "--pack", "anki-deck", "--no-model")
    assert res.exit_code == 0, res.output
    items = imported(settings, "anki-deck")
    assert [i.question for i in items] == ["What is overfitting?", "Define recall"] and items[1].tags == ["metrics"]
    bad = tmp_path / "bad.apkg"
    make_apkg(bad, [("Front only", "", "")])
    res = run(runner, bad, "--pack", "bad-deck", "--no-model")
    assert res.exit_code == 1 and "note 1 (id 1001): no answer" in res.output
    assert not (settings.packs_dir / "bad-deck.md").exists()
    notzip = tmp_path / "fake.apkg"
    notzip.write_text("hello", encoding="utf-8")
    assert "not a zip file" in run(runner, notzip, "--pack", "x", "--no-model").output


def test_the_model_drafts_missing_key_points_and_a_shipped_pack_name_is_refused(runner, settings, tmp_path, monkeypatch):
    from tests.fake_openai import FakeOpenAI

    f = tmp_path / "one.csv"
    f.write_text(f"question,answer\nWhat is overfitting?,\"{ANSWER_EN}\"\n", encoding="utf-8")
    assert "already exists" in run(runner, f, "--pack", "deep-learning-zh", "--no-model").output
    with FakeOpenAI() as server:
        server.queue({"key_points": ["Overfitting fits noise in the training data",
                                     "An overfit model does poorly on new data",
                                     "Regularization, more data and early stopping reduce overfitting"]})
        monkeypatch.setenv("INTERVIEW_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("INTERVIEW_LLM_MODEL", "drafter")
        res = run(runner, f, "--pack", "drafted")
        assert res.exit_code == 0, res.output
        assert ANSWER_EN in json.dumps(server.requests[0]["body"])
    (item,) = imported(settings, "drafted")
    assert item.status == "draft" and item.key_points[1] == "An overfit model does poorly on new data"
    assert "status: draft" in (settings.packs_dir / "drafted.md").read_text(encoding="utf-8")
    again = run(runner, f, "--pack", "drafted", "--no-model")
    assert again.exit_code == 2 and "--replace" in again.output


def _cpu_seconds(fn, *args) -> float:
    """CPU seconds of the fastest of 3 runs: the CPU this process got, not how busy the machine is."""
    return min(timeit.repeat(lambda: fn(*args), number=1, repeat=3, timer=time.process_time))


def test_json_line_numbers_are_linear_in_the_file_size_and_where_each_item_starts(tmp_path):
    """Each item's line used to be counted from the file's start: quadratic in the file's size."""
    from bot.importers import read

    def deck(n, name):
        path = tmp_path / name
        path.write_text(json.dumps({"questions": [{"question": f"What is item {i}?", "answer": ANSWER_EN}
                                                  for i in range(n)]}, indent=2), encoding="utf-8")
        return path

    small, large = deck(5_000, "small.json"), deck(20_000, "large.json")
    rows = read(large)
    assert [r.line for r in rows[:3]] == [3, 7, 11] and rows[-1].line == 3 + 4 * (20_000 - 1)
    assert _cpu_seconds(read, large) < 8 * _cpu_seconds(read, small)


def _bomb(path, member: str):
    """A deck whose collection unpacks to just over the limit: ~130 kB (deflate) or ~4 kB (zstd) on disk."""
    import zstandard

    megabyte = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z, \
            z.open(member, "w", force_zip64=True) as m:
        out = zstandard.ZstdCompressor().stream_writer(m, closefd=False) if member.endswith("21b") else m
        for _ in range(128 + 1):  # MB: the limit is 128
            out.write(megabyte)
        out.close()
    return path


@pytest.mark.parametrize("member", ["collection.anki21", "collection.anki21b"])
def test_a_decompression_bomb_is_refused_without_unpacking_it_into_memory(tmp_path, member):
    import tracemalloc

    from bot.errors import CorpusError
    from bot.importers import read

    deck = _bomb(tmp_path / "bomb.apkg", member)
    assert deck.stat().st_size < 1024 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(CorpusError, match=r"bomb.apkg:1: the Anki collection unpacks to more than 128 MB"):
            read(deck)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"{peak / 1024 / 1024:.0f} MB held at once"


def test_an_apkg_whose_notes_are_a_view_is_refused(tmp_path):
    """A view (or a generated column) computes what it returns: a recursive one never ends."""
    deck = tmp_path / "view.apkg"
    db_path = tmp_path / "collection.anki2"
    db = sqlite3.connect(db_path)
    db.execute("CREATE VIEW notes AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) "
               "SELECT i AS id, 'Q?' || char(31) || 'A.' AS flds, '' AS tags FROM n")
    db.close()
    with zipfile.ZipFile(deck, "w") as z:
        z.write(db_path, "collection.anki2")
    res = run(CliRunner(), deck, "--pack", "view-deck", "--no-model")
    assert res.exit_code == 1 and "view.apkg:1: the Anki collection has no table of notes" in res.output, res.output


def test_apkg_notes_whose_fields_are_not_text_are_named(runner, tmp_path):
    """SQLite keeps whatever a column is given: a note's fields may be NULL or bytes in a deck made by hand."""
    deck = tmp_path / "odd.apkg"
    make_apkg(deck, [("What is overfitting?", ANSWER_EN, "ml"), ("x", "y", ""), ("x", "y", "")])
    with zipfile.ZipFile(deck) as z:
        (tmp_path / "c.anki2").write_bytes(z.read("collection.anki2"))
    db = sqlite3.connect(tmp_path / "c.anki2")
    db.execute("UPDATE notes SET flds = NULL, tags = NULL WHERE id = 1002")
    db.execute("UPDATE notes SET flds = x'51003f1f41', tags = 7 WHERE id = 1003")
    db.commit()
    db.close()
    with zipfile.ZipFile(deck, "w") as z:
        z.write(tmp_path / "c.anki2", "collection.anki2")
    res = run(runner, deck, "--pack", "odd", "--no-model")
    assert res.exit_code == 1, res.output
    assert "note 2 (id 1002): a note needs a front and a back field" in res.output
    assert "note 3 (id 1003): a note needs a front and a back field" in res.output


def test_json_nested_too_deeply_is_a_problem_of_its_line(tmp_path):
    from bot.errors import CorpusError
    from bot.importers import read

    (tmp_path / "q.json").write_text("[" * 100_000, encoding="utf-8")
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "Q?", "answer": "A."}) + "\n" + "[" * 100_000,
                                      encoding="utf-8")
    for name, line in (("q.json", 1), ("q.jsonl", 2)):
        with pytest.raises(CorpusError, match=rf"{name}:{line}: JSON nested too deeply"):
            read(tmp_path / name)


@pytest.mark.parametrize("header, says", [
    ("#separator:", "deck.txt:1: `#separator:` is not one character"),
    ("#separator:ab", "deck.txt:1: `#separator:ab` is not one character"),
    ("#tags column:x", "deck.txt:1: `#tags column:x` is not a column number"),
    ("#tags column:" + "9" * 5000, "is not a column number"),
])
def test_a_bad_anki_header_line_is_named(tmp_path, header, says):
    """Found by tests/test_fuzz.py: csv.reader's TypeError and int()'s ValueError escaped as tracebacks."""
    from bot.errors import CorpusError
    from bot.importers import read

    deck = tmp_path / "deck.txt"
    deck.write_text(f"{header}\nWhat is overfitting?\t{ANSWER_EN}\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(says)):
        read(deck)


def test_answers_with_heading_lines_or_carriage_returns_import_as_written(runner, settings, tmp_path):
    """Found by tests/test_fuzz.py: such an answer (or a key point over two lines) broke the pack
    written for it, and import refused it as "a bug in the importer"."""
    f = tmp_path / "qs.json"
    f.write_text(json.dumps([
        {"question": "What is overfitting?", "answer": ANSWER_EN + "\n## See also: bias\n### Note\nvariance",
         "tags": ["ml\nbasics"]},
        {"question": "What is recall?", "answer": "TP / (TP + FN).\rThe share of real positives found.",
         "key_points": ["TP over\nTP + FN", "real positives", "found by the model"]},
    ]), encoding="utf-8")
    res = run(runner, f, "--pack", "odd-answers", "--no-model")
    assert res.exit_code == 0, res.output
    first, second = imported(settings, "odd-answers")
    assert first.answer.splitlines()[-3:] == [" ## See also: bias", " ### Note", "variance"]
    assert first.tags == ["ml basics"]
    assert second.answer == "TP / (TP + FN).\nThe share of real positives found."
    assert second.key_points == ["TP over TP + FN", "real positives", "found by the model"]


def test_an_apkg_whose_zip_directory_points_before_the_file_is_a_damaged_deck(runner, tmp_path):
    """Found by tests/test_fuzz.py: zipfile then seeks before the file's start (OSError EINVAL)."""
    deck = tmp_path / "deck.apkg"
    make_apkg(deck, [("What is overfitting?", ANSWER_EN, "ml")])
    data = bytearray(deck.read_bytes())
    end = data.rfind(b"PK\x05\x06")  # the end of central directory record
    data[end + 19] = 1  # the top byte of the central directory's offset
    deck.write_bytes(bytes(data))
    res = run(runner, deck, "--pack", "damaged", "--no-model")
    assert res.exit_code == 1 and "deck.apkg:1: the Anki collection inside is damaged" in res.output, res.output
