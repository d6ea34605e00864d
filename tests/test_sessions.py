"""The session engine over a real database, once on a SQLite file and once on a real PostgreSQL
server: answers are saved before grading and survive failures; two writers never both answer one
question; old databases are upgraded, newer ones refused."""
import json
import shutil
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.errors import LLMError, UsageError
from bot.grading.grader import Grader
from bot.llm.fake import FakeLLM
from bot.service import InterviewService
from bot.sessions import ERROR, GRADED, PENDING, SKIPPED, SessionEngine, Store
from bot.grading.result import Grade
from tests.conftest import REPO, start_answering
from pathlib import Path

REPLY = {"missing_points": [], "wrong_claims": [], "score": 4}


@pytest.fixture
def service(history, corpus_items):
    """The session store under the service that grades its answers (the store itself does not)."""
    return InterviewService(SessionEngine(Store(history.url), corpus_items, decode=Grade.from_dict), grader=Grader(FakeLLM()))


@pytest.fixture
def engine(service):
    return service.engine


def rows(store: Store, sql: str) -> list[tuple]:
    with store.connect() as db:
        return [tuple(r.values()) for r in db.execute(sql)]


def test_start_picks_questions_by_topic(engine):
    s = engine.start("ann", topic="CNN", count=10, seed=1)
    items = [engine.items[q] for q in s.question_ids]
    assert items and all(any("cnn" in t.lower() for t in i.tags) or "cnn" in i.question.lower() for i in items)
    with pytest.raises(UsageError, match="No question matches"):
        engine.start("ann", topic="astrology")


def test_a_session_over_both_behavioural_packs_asks_each_question_once(history):
    """beh-en-001 and beh-zh-001 are one question (`same as`): all of both packs, 34 items, are 22
    questions, each asked once, in either language."""
    from bot.corpus import load_items
    from tests.conftest import PACKS

    items = load_items([PACKS / "behavioural-en.md", PACKS / "behavioural-zh.md"])
    engine = SessionEngine(Store(history.url), items, decode=Grade.from_dict)
    for seed in range(5):
        asked = [engine.items[q] for q in engine.start("ann", count=40, seed=seed).question_ids]
        ids = {i.id for i in asked}
        assert len(asked) == 22 and not any(t in ids for i in asked for t in i.same_as)
        assert {i.language for i in asked} == {"en", "zh"}


def test_answer_is_saved_before_grading_and_kept_when_grading_fails(engine, service):
    s = engine.start("ann", count=2, seed=3)
    service.grader().llm.queue(LLMError("endpoint down", "start it"))
    item = engine.current_item(s)
    rec = engine.submit(s, "dropout 在训练时随机丢弃神经元，用来防止过拟合，推理时关闭。")
    assert rec.status == PENDING and engine.get(s.id).position == 1
    with pytest.raises(LLMError):
        service.grade(rec)
    kept = engine.answer(rec.id)
    assert kept.status == ERROR and "endpoint down" in kept.error and kept.question_id == item.id
    assert [a.id for a in engine.ungraded(s)] == [rec.id]
    service.grader().llm.queue(REPLY)
    grade = service.grade(kept)  # resume: the saved answer is graded later
    assert engine.answer(rec.id).status == GRADED and grade.question_id == item.id
    assert engine.ungraded(s) == []


def test_skip_finish_and_summary(engine, service):
    s = engine.start("bob", count=2, seed=5)
    s = engine.skip(s)
    service.grader().llm.queue(REPLY)
    rec = engine.submit(s, "这是一个关于这个问题的认真回答，讲了定义、原理和例子，也讲了优缺点。")
    service.grade(rec)
    assert engine.current_item(s) is None
    summary = engine.summary(engine.finish(engine.get(s.id)))
    assert summary["skipped"] == 1 and summary["graded"] == 1 and summary["mean"] is not None
    assert [i["status"] for i in summary["items"]] == [SKIPPED, GRADED]


def test_regrading_the_same_answer_is_served_from_history(engine, service):
    s = engine.start("cat", count=1, seed=2)
    text = "一个认真的回答：讲清楚定义、原理、优缺点和一个例子，说明在实际项目里怎么用。"
    service.grader().llm.queue(REPLY)
    first = service.grade(engine.submit(s, text))
    s2 = engine.start("cat", count=1, seed=2)
    again = service.grade(engine.submit(s2, text))  # no reply queued: a model call would fail
    assert again == first and len(service.grader().llm.calls) == 1


def test_latest_active_is_per_owner(engine):
    a = engine.start("ann", count=1)
    engine.start("bob", count=1)
    assert engine.latest_active("ann").id == a.id
    engine.finish(a, "stopped")
    assert engine.latest_active("ann") is None


def test_the_sqlite_database_is_wal(settings):
    Store(settings.db_path)
    with sqlite3.connect(settings.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_killing_the_process_mid_grading_loses_no_answer(tmp_path, settings, history):
    """A real process is killed while the (slow, fake HTTP) model is grading; the answer is on disk."""
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        server.queue(("sleep", 30, REPLY))
        env = {**os.environ, "INTERVIEW_HOME": str(settings.home), "INTERVIEW_LLM_BASE_URL": server.base_url,
               "INTERVIEW_LLM_MODEL": "slow", "PYTHONPATH": str(REPO)}
        answer = "dropout 在训练时以概率 p 随机丢弃神经元，起正则化作用；BN 对 mini-batch 做标准化。"
        proc = start_answering(["--count", "1", "--seed", "1", "--follow-ups", "0"], answer, env, tmp_path, server)
        assert server.requests, proc.stderr.read() if proc.poll() is not None else "no request"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    saved = rows(Store(history.url), "SELECT answer, status FROM answers")
    assert saved == [(answer, PENDING)]
    assert json.loads(json.dumps(saved))  # plain data, readable by any tool


FIXTURE_DB = Path(__file__).resolve().parent / "data" / "history" / "main-d01e751.sqlite3"


def test_a_database_written_by_an_earlier_version_opens_upgraded_and_works(tmp_path, corpus_items):
    """tests/data/history/main-d01e751.sqlite3: the schema of main at d01e751 (user_version 0),
    one session of ann with a graded answer (a grade in that version's format) and a pending one."""
    from bot.llm.fake import FakeLLM
    from bot.schema import SCHEMA_VERSION

    path = tmp_path / "history.sqlite3"
    shutil.copy(FIXTURE_DB, path)
    store = Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        cols = {r[1] for r in db.execute("PRAGMA table_info(answers)")}
    assert "grading_version" in cols
    service = InterviewService(SessionEngine(store, corpus_items, decode=Grade.from_dict), grader=Grader(FakeLLM([REPLY, REPLY])))
    engine = service.engine
    s = engine.latest_active("ann")
    old, pending = engine.answers(s)
    assert old.grade.overall == 5.3 and old.grade.grading_version == ""  # read as it was stored
    assert [a.id for a in engine.ungraded(s)] == [pending.id]
    graded = service.grade(pending)  # --resume grades what was saved
    assert graded.grading_version.startswith("g-")
    # the old grade is not served again for the same answer: it was made by another grading version
    again = service.grade(engine.record(old.question_id, old.question, old.answer, "session"))
    assert again.grading_version == graded.grading_version and len(service.grader().llm.calls) == 2
    Store(path)  # opening an up-to-date database again changes nothing
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


SLACK_FIXTURE_DB = FIXTURE_DB.parent / "main-d43101b-slack.sqlite3"


def test_a_database_the_slack_app_made_its_own_tables_in_is_upgraded_keeping_their_rows(tmp_path, corpus_items):
    """tests/data/history/main-d43101b-slack.sqlite3, written by main at d43101b (schema 6), where
    the Slack app created its tables itself: a Slack session of U1 with a pending answer, U1's card,
    a handled event, U1's weekly reminder (sent 2026-03-02) and a turn held on the session. Its
    tables are now a migration's (bot.schema), which must find them there and keep every row."""
    from bot.schema import SCHEMA_VERSION
    from bot.slack.core import Reminders, Turns

    path = tmp_path / "history.sqlite3"
    shutil.copy(SLACK_FIXTURE_DB, path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 6
    store = Store(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [r[0] for r in db.execute("SELECT event_id FROM slack_events")] == ["Ev-old"]
        assert db.execute("SELECT user_id, enabled, last_sent FROM slack_reminders").fetchall() == \
            [("U1", 1, "2026-03-02T09:00:00+00:00")]
        assert db.execute("SELECT session_id FROM slack_turns").fetchall() == [(1,)]
    engine = SessionEngine(store, corpus_items, decode=Grade.from_dict)
    s = engine.find_by_thread("1700000000.000100")
    assert (s.owner, s.channel, [a.answer for a in engine.ungraded(s)]) == ("U1", "slack", ["dropout 随机丢弃神经元"])
    assert Reminders(store).enabled("U1")
    a_century = 100 * 365 * 86400.0  # the turn was taken when the file was written: held, not yet expired
    assert Turns(store, lease=a_century).take(s.id) is None and Turns(store).take(s.id) is not None


def test_a_database_of_the_first_schema_gets_every_table(tmp_path):
    path = tmp_path / "history.sqlite3"
    shutil.copy(FIXTURE_DB, path)
    Store(path)
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "answers", "cards", "slack_events", "slack_reminders", "slack_turns"} <= tables


def test_the_columns_read_from_the_migrations_are_the_database_s(tmp_path):
    """export and import copy the columns bot.schema.columns() reads from the migrations: they must
    be the ones a migrated database has, in its order."""
    from bot.schema import columns

    path = tmp_path / "history.sqlite3"
    shutil.copy(FIXTURE_DB, path)
    Store(path)
    Store(tmp_path / "new.sqlite3")
    for db_path in (path, tmp_path / "new.sqlite3"):
        with sqlite3.connect(db_path) as db:
            for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                assert columns(table) == tuple(r[1] for r in db.execute(f"PRAGMA table_info({table})")), table


def test_a_database_from_a_newer_version_is_refused_not_damaged(tmp_path):
    from bot.errors import StoreError
    from bot.schema import SCHEMA_VERSION

    path = tmp_path / "history.sqlite3"
    shutil.copy(FIXTURE_DB, path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer interview-bot"):
        Store(path)
    assert path.read_bytes() == before


def test_two_terminal_sessions_on_one_database_both_finish(tmp_path, settings, history):
    """Two `interview start` processes share the history database (SQLite's WAL, or PostgreSQL):
    both save and grade their answers while the other is grading; neither sees a locked database."""
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        server.queue(("sleep", 1, REPLY), ("sleep", 1, REPLY))
        env = {**os.environ, "INTERVIEW_HOME": str(settings.home), "INTERVIEW_LLM_BASE_URL": server.base_url,
               "INTERVIEW_LLM_MODEL": "slow", "PYTHONPATH": str(REPO)}
        answer = "dropout 在训练时以概率 p 随机丢弃神经元，起正则化作用；BN 对 mini-batch 做标准化。\n.\n"
        Store(history.url)  # created once, as the first run would
        procs = [subprocess.Popen([sys.executable, "-m", "bot", "start", "--count", "1", "--seed", str(seed), "--follow-ups", "0"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, cwd=tmp_path, text=True) for seed in (1, 2)]
        results = [p.communicate(answer, timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in results]
    assert rows(Store(history.url), "SELECT session_id, status FROM answers ORDER BY session_id") == \
        [(1, GRADED), (2, GRADED)]


def test_writers_racing_to_answer_one_question_leave_one_answer_and_a_consistent_position(history, corpus_items):
    """Eight threads, each with its own Store (its own connections, as separate processes or replicas
    have), answer the same question of the same session at the same instant: exactly one answer is
    saved, the others are told it was answered elsewhere (or, after the last question, that none is
    open), and the position moves by one. Each of five rounds races afresh on the next question."""
    from bot.errors import ConflictError

    engines = [SessionEngine(Store(history.url), corpus_items, decode=Grade.from_dict) for _ in range(8)]
    s = engines[0].start("ann", count=5, seed=4)
    for round_ in range(5):
        seen = engines[0].get(s.id)
        barrier = threading.Barrier(len(engines))

        def answer(engine, n):
            barrier.wait()
            try:
                return engine.submit(seen, f"answer {n} in round {round_}")
            except ConflictError:
                return None
            except UsageError:  # the winner answered the last question: the session has none open
                assert round_ == 4
                return None

        with ThreadPoolExecutor(len(engines)) as pool:
            saved = [r for r in pool.map(answer, engines, range(len(engines))) if r is not None]
        assert len(saved) == 1 and saved[0].position == round_
        assert engines[0].get(s.id).position == round_ + 1
    answers = engines[0].answers(s)
    assert [a.position for a in answers] == [0, 1, 2, 3, 4]
    assert engines[0].current_item(engines[0].get(s.id)) is None


def test_concurrent_meta_updates_lose_no_key(history, corpus_items):
    """update_meta is read-modify-write: without its lock two writers would each drop the other's key."""
    engines = [SessionEngine(Store(history.url), corpus_items, decode=Grade.from_dict) for _ in range(6)]
    s = engines[0].start("ann", count=1, seed=1)
    barrier = threading.Barrier(len(engines))

    def put(engine, n):
        barrier.wait()
        engine.update_meta(s.id, **{f"k{n}": str(n)})

    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(put, engines, range(len(engines))))
    assert engines[0].get(s.id).meta == {f"k{n}": str(n) for n in range(len(engines))}
    assert engines[0].find_by_meta("k3", "3").id == s.id and engines[0].find_by_meta("k3", "4") is None
