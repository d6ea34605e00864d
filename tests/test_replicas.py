"""Several Slack app replicas over one history database (issue #12): an answer is graded once
however the replicas race for it, one left by a dead replica is graded by another's sweep, and one
Slack event delivered to two replicas is handled once. Real databases (SQLite and a real PostgreSQL
server, tests/conftest.py), the real bolt app over HTTP, the fake Slack Web API on 127.0.0.1."""
from __future__ import annotations

import threading

from bot.corpus import load_items
from bot.errors import ConflictError
from bot.grading.grader import Grader
from bot.service import InterviewService
from bot.sessions import SessionEngine, Store
from bot.slack.core import SLACK
from bot.grading.result import Grade
from test_slack import ALICE, CHANNEL, MINI, Bot, GatedLLM, fake, fill, questions_posted  # noqa: F401 - fake: the fixture

THREAD = "1700000000.000001"


def slack_session_with_pending_answer(url: str, *, replica: str | None):
    """What a process leaves behind when it dies right after saving an answer, before grading it:
    a Slack session (2 questions) whose answer 1 is pending; claimed by `replica` (None: unclaimed,
    as an engine without replicas saves it)."""
    engine = SessionEngine(Store(url), load_items([MINI]), decode=Grade.from_dict, replica=replica)
    s = engine.start(ALICE, count=2, seed=1, channel=SLACK, meta={"channel": CHANNEL, "thread_ts": THREAD})
    item = engine.current_item(s)
    rec = engine.submit(s, item.answer.replace("\n", " "))
    return engine, s, rec


def claimed_by(engine: SessionEngine, answer_id: int):
    with engine.store.connect() as db:
        return db.execute("SELECT claimed_by FROM answers WHERE id=:id", id=answer_id).scalar()


def test_two_engines_racing_for_one_pending_answer_grade_it_once(history):
    saver, _, rec = slack_session_with_pending_answer(history.url, replica=None)
    items = load_items([MINI])
    slow, quick = GatedLLM().queue(fill), GatedLLM().queue(fill)
    slow.gate.clear()  # replica a is inside the model call when b tries
    a = InterviewService(SessionEngine(Store(history.url), items, decode=Grade.from_dict, replica="a"), grader=Grader(slow))
    b = InterviewService(SessionEngine(Store(history.url), items, decode=Grade.from_dict, replica="b"), grader=Grader(quick))
    outcome = {}

    def grade(name, service):
        try:
            outcome[name] = service.grade(rec).overall
        except ConflictError:
            outcome[name] = "conflict"

    ta = threading.Thread(target=grade, args=("a", a))
    ta.start()
    try:
        deadline = threading.Event()
        for _ in range(400):  # bounded wait for a's claim to be committed
            if claimed_by(saver, rec.id) == "a":
                break
            deadline.wait(0.05)
        assert claimed_by(saver, rec.id) == "a"
        grade("b", b)
        assert outcome == {"b": "conflict"} and quick.calls == []
    finally:
        slow.gate.set()
        ta.join(20)
    assert outcome["b"] == "conflict" and isinstance(outcome["a"], float)
    assert saver.answer(rec.id).status == "graded" and len(slow.calls) == 1
    # a graded answer is never claimed again: a late sweep or retry cannot grade it twice
    assert not b.claim(rec) and claimed_by(saver, rec.id) is None


def test_startup_sweeps_of_two_replicas_grade_an_orphan_once(history, fake, settings):
    slack_session_with_pending_answer(history.url, replica=None)
    first_llm = GatedLLM().queue(fill)
    first_llm.gate.clear()  # the first replica's sweep claims the answer and is held in the model
    one = Bot(fake, settings, llm=first_llm)
    two = None
    try:
        fake.wait_count("chat.postMessage", 1)  # one's "grading…": it holds the claim
        two = Bot(fake, settings, llm=GatedLLM().queue(fill))
        two.executor.settle()  # two's startup sweep has run, and found nothing it may take
        assert two.llm.calls == [] and questions_posted(fake, THREAD) == []
        first_llm.gate.set()
        fake.wait_for(lambda f: questions_posted(f, THREAD), what="question 2")
        one.executor.settle()
        assert len(one.llm.calls) == 1 and two.llm.calls == []
        assert len(questions_posted(fake, THREAD)) == 1 and len(fake.of("chat.update")) == 1
        assert [a.status for a in one.engine.answers(one.engine.get(one.session().id))] == ["graded"]
    finally:
        one.close()
        if two is not None:
            two.close()


def test_answer_claimed_by_a_dead_replica_is_graded_by_another_once_its_lease_expires(history, fake, settings):
    dead, s, rec = slack_session_with_pending_answer(history.url, replica="dead-replica")
    live = Bot(fake, settings, llm=GatedLLM().queue(fill), sweep_every=0.1)
    try:
        live.executor.settle()  # the startup sweep: the claim is fresh (its holder may be alive)
        assert dead.answer(rec.id).status == "pending" and live.llm.calls == []
        with dead.store.connect() as db:  # the dead replica's lease runs out
            db.execute("UPDATE answers SET claimed_at='2000-01-01T00:00:00+00:00' WHERE id=:id", id=rec.id)
        fake.wait_for(lambda f: questions_posted(f, THREAD), what="question 2 after the sweep")
        assert dead.answer(rec.id).status == "graded" and len(live.llm.calls) == 1
        grades = [c for c in fake.of("chat.update") if "1" in c.params.get("text", "")]
        assert len(grades) == 1
        assert all(c.params.get("thread_ts") == THREAD for c in fake.of("chat.postMessage"))
    finally:
        live.close()


def test_one_event_delivered_to_two_replicas_is_handled_once(history, fake, settings):
    a = Bot(fake, settings)
    b = Bot(fake, settings)
    try:
        a.command("")
        fake.wait_count("chat.update", 1)
        s = a.session()
        text = a.engine.current_item(s).answer.replace("\n", " ")
        a.llm.queue(fill)
        b.llm.queue(fill)
        barrier = threading.Barrier(2)
        codes = []

        def deliver(bot):
            barrier.wait()
            codes.append(bot.say(text, thread_ts=s.meta["thread_ts"], event_id="EvSAME")[0])

        threads = [threading.Thread(target=deliver, args=(bot,)) for bot in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert codes == [200, 200]
        fake.wait_for(lambda f: questions_posted(f, s.meta["thread_ts"]), what="question 2")
        a.executor.settle()
        b.executor.settle()
        assert len(a.engine.answers(s)) == 1 and len(a.llm.calls) + len(b.llm.calls) == 1
        assert len(questions_posted(fake, s.meta["thread_ts"])) == 1
    finally:
        a.close()
        b.close()


def test_follow_up_answer_left_by_a_dead_replica_is_graded_against_its_points_by_another(history, fake, settings):
    items = load_items([MINI])
    dead = InterviewService(SessionEngine(Store(history.url), items, decode=Grade.from_dict, replica="dead-replica"),
                            grader=Grader(GatedLLM().queue(fill)))
    engine = dead.engine
    s = engine.start(ALICE, count=2, seed=1, channel=SLACK, meta={"channel": CHANNEL, "thread_ts": THREAD})
    item = engine.current_item(s)
    main = engine.submit(s, "It is about weights.")
    dead.grade(main)  # graded; then the follow-up was asked and its answer saved when the replica died
    engine.update_meta(s.id, follow_up={"position": main.position, "item_id": item.id, "points": [1], "by": "template",
                                        "question": "And what does the second point say?", "asked": [1]})
    f_rec = engine.submit_follow_up(s.id, item.answer.replace("\n", " "))
    with engine.store.connect() as db:
        db.execute("UPDATE answers SET claimed_at='2000-01-01T00:00:00+00:00' WHERE id=:id", id=f_rec.id)
    live = Bot(fake, settings, llm=GatedLLM().queue(fill))
    try:
        fake.wait_for(lambda f: questions_posted(f, THREAD), what="question 2 after the follow-up was graded")
        live.executor.settle()
        rec = engine.answer(f_rec.id)
        assert rec.status == "graded" and rec.follow_up == {"points": [1], "by": "template", "asked": [1]}
        assert [k.point for k in rec.grade.key_points] == [item.key_points[1]]  # only the point asked about
        assert len(live.llm.calls) == 1 and len(questions_posted(fake, THREAD)) == 1
    finally:
        live.close()
