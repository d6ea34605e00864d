"""Slack replicas over one history database (issue #24): the session of a threaded message is found
through an index before the 3-second ack, not by reading every session; and the database decides
which of two answers to one question is saved, however the replicas race. Real SQLite and
PostgreSQL (tests/conftest.py), the real bolt app over HTTP, the fake Slack Web API."""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from sqlalchemy import event

from bot.sessions import SessionEngine, Store
from bot.slack import core
from test_slack import ALICE, BOB, CHANNEL, Bot, fake, fill, questions_posted  # noqa: F401 - fake: the fixture

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


def test_two_replicas_answering_the_same_question_at_once_save_one_answer(history, fake, settings):
    one, two = Bot(fake, settings), Bot(fake, settings)
    try:
        one.command("")
        fake.wait_count("chat.update", 1)
        s = one.session()
        ts = s.meta["thread_ts"]
        for bot in (one, two):
            bot.llm.queue(fill)
            bot.llm.gate.clear()  # the answer that wins is still being graded when the other arrives
        texts = {one: "Overfitting: low training error, high test error.", two: "It memorises the training set."}
        barrier = threading.Barrier(2)

        def answer(bot):
            barrier.wait()
            return bot.say(texts[bot], thread_ts=ts)[0]

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(answer, (one, two))) == [200, 200]
        # Both were acked, so both were looked at before the ack, while the first was being graded.
        for bot in (one, two):
            bot.llm.gate.set()
        fake.wait_for(lambda f: questions_posted(f, ts), what="question 2")
        one.executor.settle()
        two.executor.settle()
        answers = one.engine.answers(one.engine.get(s.id))
        assert len(answers) == 1 and answers[0].answer in texts.values()
        assert one.engine.get(s.id).position == 1 and len(questions_posted(fake, ts)) == 1
        assert len(one.llm.calls) + len(two.llm.calls) == 1
        note = fake.wait_count("chat.postEphemeral", 1)[0].params  # the other one's author is told
        assert note["user"] == ALICE and note["thread_ts"] == ts and "did not take this one" in note["text"]
        assert len(fake.of("chat.postEphemeral")) == 1
        assert core.Turns(one.engine.store).take(s.id) is not None  # handed over with question 2: free for its answer
    finally:
        one.close()
        two.close()


def test_one_turn_is_taken_once_however_many_race_for_it(history, settings):
    store = Store(settings.database_url)
    turns, other = core.Turns(store, lease=60), core.Turns(Store(settings.database_url), lease=60)
    session = SessionEngine(store, [], decode=dict).start(ALICE, count=1, chosen=[], channel="slack").id
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda k: (turns, other)[k % 2].take(session), range(16)))
    won = [t for t in tokens if t]
    assert len(won) == 1
    other.give_back(session, "not-the-holder")
    assert turns.take(session) is None  # only its holder gives a turn back
    turns.give_back(session, won[0])
    again = other.take(session)
    assert again is not None and turns.take(session) is None
    with store.connect() as db:  # its holder died: the turn is taken over once its lease ran out
        db.execute("UPDATE slack_turns SET taken_at=:old WHERE session_id=:id", id=session,
                   old=(datetime.now(timezone.utc) - timedelta(seconds=61)).isoformat(timespec="seconds"))
    assert turns.take(session) is not None and other.take(session) is None


def test_a_turn_held_in_a_block_is_handed_over_once(history, settings):
    store = Store(settings.database_url)
    turns = core.Turns(store, lease=60)
    session = SessionEngine(store, [], decode=dict).start(ALICE, count=1, chosen=[], channel="slack").id
    with turns.held(session) as token:
        assert token and turns.take(session) is None
        turns.hand_over(session)  # the next question is about to be posted
        mine = turns.take(session)  # an answer to it
        assert mine is not None
    assert turns.take(session) is None  # leaving the block did not give away the answer's turn
    turns.give_back(session, mine)
