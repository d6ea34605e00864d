"""Slack replicas over one history database (issue #24): the session of a threaded message is found
through an index before the 3-second ack, not by reading every session. Real SQLite and
PostgreSQL (tests/conftest.py), the real bolt app over HTTP, the fake Slack Web API."""
from __future__ import annotations

import json

from sqlalchemy import event

from bot.sessions import Store
from test_slack import BOB, Bot, fake  # noqa: F401 - fake: the fixture

FILLER = 2000  # other sessions in the database: enough for PostgreSQL's planner to prefer an index


def add_other_sessions(store: Store, n: int = FILLER) -> None:
    """`n` Slack sessions of other threads, in one statement, then fresh planner statistics."""
    with store.connect() as db:
        db.execute("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < :n) "
                   "INSERT INTO sessions(owner, channel, question_ids, meta, created_at, updated_at) "
                   "SELECT 'U0OTHER', 'slack', '[]', '{\"channel\": \"C0OTHER\", \"thread_ts\": \"1600000000.' "
                   "|| i || '\"}', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00' FROM k", n=n)
    with store.connect() as db:
        db.execute("ANALYZE")


def full_scans_of_sessions(store: Store, statements: list[tuple[str, object]]) -> list[str]:
    """The plans, among `statements` (SQL as sent to the driver, parameters), that read the
    sessions table other than by seeking an index."""
    bad = []
    with store.db.engine.connect() as conn:
        for sql, params in statements:
            if store.dialect == "sqlite":
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
                bad += [f"{r[3]}  <- {sql}" for r in rows if r[3].startswith("SCAN sessions")]
            else:
                plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params).scalar()
                nodes = [plan[0]["Plan"] if isinstance(plan, list) else json.loads(plan)[0]["Plan"]]
                while nodes:
                    node = nodes.pop()
                    nodes += node.get("Plans", [])
                    if node.get("Relation Name") == "sessions" and (
                            node["Node Type"] == "Seq Scan" or ("Index" in node["Node Type"] and "Index Cond" not in node)):
                        bad.append(f"{node['Node Type']} {node.get('Filter', '')}  <- {sql}")
    return bad


def test_threaded_messages_find_their_session_through_an_index(history, fake, settings):
    bot = Bot(fake, settings)
    try:
        add_other_sessions(bot.engine.store)
        bot.command("")
        fake.wait_count("chat.update", 1)
        s = bot.session()
        seen: list[tuple[str, object]] = []

        def record(conn, cursor, statement, parameters, context, executemany):
            if "FROM sessions" in statement:
                seen.append((statement, parameters))

        engine = bot.engine.store.db.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            # Channel talk in a thread that is no interview (the usual case), then the owner's `hint`.
            bot.say("lunch at noon?", thread_ts="1700000999.000001", user=BOB)
            bot.say("hint", thread_ts=s.meta["thread_ts"])
            fake.wait_for(lambda f: any("💡" in t for t in f.texts()), what="the hint")
            bot.executor.settle()
        finally:
            event.remove(engine, "before_cursor_execute", record)
        assert seen  # the lookups ran while recording
        assert full_scans_of_sessions(bot.engine.store, seen) == []
    finally:
        bot.close()
