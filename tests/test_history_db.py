"""The history database layer (bot.db) on both engines: the setting, claims that two stores race
for (Slack event ids, the weekly reminder), schema versions on PostgreSQL, and errors that say
what failed and how to fix it."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from bot.config import load_settings
from bot.db import Database
from bot.errors import StoreError
from bot.schema import MIGRATIONS, SCHEMA_VERSION
from bot.sessions import Store
from bot.slack.core import EventLog, Reminders
from bot.grading.result import Grade
from tests.servers import free_port


def race(n: int, fn) -> list:
    """fn(i) for i in range(n) in n threads released at the same instant."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_the_setting_defaults_to_the_sqlite_file_and_takes_a_url(tmp_path):
    assert load_settings({"INTERVIEW_HOME": str(tmp_path)}).database_url == f"sqlite:///{tmp_path / 'history.sqlite3'}"
    (tmp_path / "config.toml").write_text('database_url = "postgresql://bot:pw@db.internal/history"\n')
    assert load_settings({"INTERVIEW_HOME": str(tmp_path)}).database_url == "postgresql://bot:pw@db.internal/history"
    env = {"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_DATABASE_URL": f"sqlite:///{tmp_path / 'team.db'}"}
    store = Store(load_settings(env).database_url)
    assert store.path == tmp_path / "team.db" and store.path.is_file()
    assert Database("postgresql://u:p@h/d").url.drivername == "postgresql+psycopg"  # psycopg 3 either way
    assert Database("postgresql+psycopg://u:p@h/d").url.drivername == "postgresql+psycopg"


def test_one_slack_event_recorded_by_two_stores_at_once_is_handled_once(history):
    logs = [EventLog(Store(history.url)) for _ in range(2)]
    for n in range(10):  # ten deliveries, each raced by two replicas (one store each) and their retries
        wins = race(6, lambda i: logs[i % 2].first_time(f"Ev{n}"))
        assert wins.count(True) == 1, (n, wins)
    assert not logs[1].first_time("Ev3") and logs[1].first_time("Ev-new")


def test_this_week_s_reminder_is_claimed_by_one_replica(history):
    reminders = [Reminders(Store(history.url)) for _ in range(2)]
    reminders[0].set("U1", True)
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    assert reminders[1].candidates(now) == ["U1"]
    assert race(6, lambda i: reminders[i % 2].claim("U1", now)).count(True) == 1
    assert reminders[0].candidates(now) == [] and not reminders[1].claim("U1", now)


def test_a_bad_url_says_which_urls_work():
    for url in ("mysql://u:secret@h/db", "sqlite://", "postgresql://u:secret@[::1/db"):
        with pytest.raises(StoreError) as e:
            Store(url)
        assert "INTERVIEW_DATABASE_URL" in e.value.hint and "postgresql://" in e.value.hint
        assert "secret" not in str(e.value)


def test_an_unreachable_server_is_named_without_its_password_with_the_fix():
    url = f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/history"  # nothing listens there
    with pytest.raises(StoreError) as e:
        Store(url)
    text = str(e.value)
    assert f"postgresql+psycopg://bot:***@127.0.0.1:{url.split(':')[-1]}" in e.value.message
    assert "INTERVIEW_DATABASE_URL" in e.value.hint and "s3cret-pw" not in text


def test_the_cli_reports_an_unreachable_server_and_exits_1(monkeypatch):
    from bot.cli import app

    monkeypatch.setenv("INTERVIEW_DATABASE_URL", f"postgresql://bot:s3cret-pw@127.0.0.1:{free_port()}/history")
    res = CliRunner().invoke(app, ["history"])
    assert res.exit_code == 1 and "Could not connect to the history database" in res.output, res.output
    assert "Fix:" in res.output and "INTERVIEW_DATABASE_URL" in res.output and "s3cret-pw" not in res.output


def _pg(postgres) -> tuple[str, Database]:
    url = postgres.create_database()
    return url, Database(url)


def _tables(db: Database) -> list[str]:
    with db.transaction() as tx:
        return [r["tablename"] for r in
                tx.execute("SELECT tablename FROM pg_tables WHERE schemaname='public' ORDER BY 1")]


def test_postgresql_refuses_a_database_of_a_newer_schema_and_leaves_it_as_it_was(postgres):
    url, db = _pg(postgres)
    Store(url)
    with db.transaction() as tx:
        tx.execute("UPDATE schema_version SET version=:v", v=SCHEMA_VERSION + 1)
    before = _tables(db)
    with pytest.raises(StoreError, match="newer interview-bot") as e:
        Store(url)
    assert "INTERVIEW_DATABASE_URL" in e.value.hint
    with db.transaction() as tx:
        assert tx.execute("SELECT version FROM schema_version").all() == [{"version": SCHEMA_VERSION + 1}]
    assert _tables(db) == before


def test_a_postgresql_database_of_schema_1_is_upgraded_in_order(postgres):
    """Step 2 reads each stored grade's JSON (PostgreSQL's jsonb, not SQLite's json_extract)."""
    url, db = _pg(postgres)
    db.migrate({1: MIGRATIONS[1]}, hint="")
    with db.transaction() as tx:
        sid = tx.insert("INSERT INTO sessions(owner, channel, question_ids, created_at, updated_at) "
                        "VALUES ('ann', 'terminal', '[\"dl-001\"]', 't', 't')")
        tx.execute("INSERT INTO answers(session_id, position, question_id, question, answer, content_hash, status, "
                    "grade, overall, created_at) VALUES (:sid, 0, 'dl-001', 'q', 'a', 'h', 'graded', :grade, 5.3, 't')",
                    sid=sid, grade='{"grading_version": "g-old", "overall": 5.3}')
    Store(url)
    with db.transaction() as tx:
        assert tx.execute("SELECT version FROM schema_version").scalar() == SCHEMA_VERSION
        row = tx.execute("SELECT grading_version, overall FROM answers").first()
        assert (row["grading_version"], row["overall"]) == ("g-old", 5.3)  # a double: 5.3 reads back as 5.3
        assert tx.execute("SELECT count(*) FROM cards").scalar() == 0


def test_stores_opening_an_empty_postgresql_database_at_once_migrate_it_once(postgres):
    for _ in range(3):
        url = postgres.create_database()
        race(4, lambda i: Store(url))
        with Database(url).transaction() as tx:
            assert tx.execute("SELECT version FROM schema_version").all() == [{"version": SCHEMA_VERSION}]


def test_a_history_moves_from_sqlite_to_postgresql_and_back_unchanged(settings, postgres, corpus_items):
    """`interview export` on one engine, `interview import` on the other: the same sessions, answers,
    grades and cards (ids are the target's own)."""
    from bot.coach import Coach, export_lines, import_lines
    from bot.sessions import SessionEngine

    here = Store(settings.db_path)
    engine = SessionEngine(here, corpus_items, decode=Grade.from_dict)
    s = engine.start("ann", count=2, seed=2)
    engine.submit(s, "an answer with a ' quote and 中文")
    engine.skip(engine.get(s.id))
    Coach(engine).record("ann", s.question_ids[0], 7.5, when="2026-03-01T09:00:00+00:00")
    lines = export_lines(here, "ann")
    dump = settings.home / "ann.jsonl"
    dump.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    there = Store(postgres.create_database())
    assert import_lines(there, dump) == (1, 0) and import_lines(there, dump) == (0, 1)
    assert export_lines(there, "ann") == lines
    back = Store(f"sqlite:///{settings.home / 'back.sqlite3'}")
    dump.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in export_lines(there, "ann")),
                    encoding="utf-8")
    assert import_lines(back, dump) == (1, 0) and export_lines(back, "ann") == lines
