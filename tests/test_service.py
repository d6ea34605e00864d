"""The application layer (bot.service) over a real SQLite file: how the model is shared between
gradings and warm-ups, atomic submits, background loading and shutdown."""
import threading
import time

import pytest

from bot.errors import ConflictError
from bot.grading.grader import Grader
from bot.grading.question import Question
from bot.llm.fake import FakeLLM
from bot.service import InterviewService
from bot.sessions import PENDING, SKIPPED, SessionEngine, Store
from bot.grading.result import Grade

REPLY = {"missing_points": [], "wrong_claims": [], "score": 4}


class Recording(FakeLLM):
    """The fake model, logging every call in order; a warm-up of a question whose id is in `hold`
    blocks until the test releases it, so a test can line things up behind a busy model."""

    def __init__(self, concurrency: int = 1, delay: float = 0.0):
        super().__init__(concurrency=concurrency)
        self.log: list[str] = []
        self.hold: dict[str, threading.Event] = {}
        self.started: dict[str, threading.Event] = {}
        self.delay = delay
        self.in_flight = self.most_in_flight = 0
        self._guard = threading.Lock()

    def prepare(self, system, user_prefix):
        qid = next((k for k in self.hold if k in user_prefix), None)
        self.log.append(f"warm {qid}" if user_prefix else "warm shared")  # shared: the part every question has
        if qid is not None:
            self.started.setdefault(qid, threading.Event()).set()
            assert self.hold[qid].wait(20), "test never released the warm-up"
        super().prepare(system, user_prefix)

    def generate_json(self, system, user, schema, max_tokens=1024):
        with self._guard:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.log.append("grade")
        try:
            time.sleep(self.delay)
            return super().generate_json(system, user, schema, max_tokens)
        finally:
            with self._guard:
                self.in_flight -= 1


def marked(item):
    """The question with its id written into the question text, so the fake sees which it warms."""
    q = Question.from_item(item)
    q.question = f"[{item.id}] {q.question}"
    return q


@pytest.fixture
def items(corpus_items):
    return corpus_items[:4]


def service_over(settings, items, llm):
    return InterviewService(SessionEngine(Store(settings.db_path), items, decode=Grade.from_dict), grader=Grader(llm, check_topic=False),
                            follow_ups=1)


def test_a_grading_goes_before_queued_warm_ups_and_stale_warm_ups_are_dropped(settings, items):
    llm = Recording()
    a, b, c = (marked(i) for i in items[:3])
    llm.hold = {a.id: threading.Event()}
    svc = service_over(settings, items, llm)
    svc.prepare(a)
    assert llm.started.setdefault(a.id, threading.Event()).wait(10)  # the model is busy warming a
    svc.prepare(b)
    svc.prepare(c)  # b has not started: c replaces it
    llm.queue(REPLY)
    rec = svc.engine.record(items[3].id, items[3].question, "an answer typed while a warms", "grade")
    graded = threading.Thread(target=svc.grade, args=(rec,))
    graded.start()
    with svc._gate._cv:  # the grading is waiting for the model
        assert svc._gate._cv.wait_for(lambda: svc._gate._waiting == 1, 10)
    llm.hold[a.id].set()
    graded.join(10)
    assert svc.warmups_idle(10)
    warms = [e for e in llm.log if e.startswith("warm") and e != "warm shared"]
    # a finished, then the grading ran (it restores its own question's prefix: that warm is its
    # own), then only the newest wanted warm-up, c; b never ran.
    assert llm.log.index("grade") < len(llm.log) - 1
    assert svc.warmed == [a.id, c.id]
    assert all(b.id not in p for _, p in llm.prepared)
    assert svc.engine.answer(rec.id).status == "graded"
    assert warms[0] == f"warm {a.id}"
    assert svc.close()


def test_an_answer_stops_a_warm_up_between_its_prefixes(settings, items):
    """A question's warm-up is several prefixes (grading and fact check, in each language its
    reference is written in); an answer arriving during the first does not wait for the rest."""
    llm = Recording()
    a = marked(items[0])
    llm.hold = {a.id: threading.Event()}
    svc = service_over(settings, items, llm)
    svc.prepare(a)
    assert llm.started.setdefault(a.id, threading.Event()).wait(10)
    llm.queue(REPLY)
    rec = svc.engine.record(items[3].id, items[3].question, "an answer typed while a warms", "grade")
    graded = threading.Thread(target=svc.grade, args=(rec,))
    graded.start()
    with svc._gate._cv:
        assert svc._gate._cv.wait_for(lambda: svc._gate._waiting == 1, 10)
    llm.hold[a.id].set()
    graded.join(10)
    assert svc.engine.answer(rec.id).status == "graded"
    before = llm.log[: llm.log.index("grade")]
    assert before.count(f"warm {a.id}") == 1, llm.log  # its other prefixes gave way to the answer
    # Without an answer waiting, the same warm-up evaluates every prefix.
    llm2 = Recording()
    svc2 = service_over(settings, items, llm2)
    svc2.prepare(a)
    assert svc2.warmups_idle(10)
    assert sum(a.id in p for _, p in llm2.prepared) >= 2
    assert svc.close() and svc2.close()


def test_gradings_get_the_model_first_come_first_served():
    """A grading that arrives as the model frees up does not barge past one already waiting."""
    from bot.service import ModelGate

    gate, order = ModelGate(1), []
    busy = gate.grading()
    busy.__enter__()

    def waiting():
        with gate.grading():
            order.append("first")

    first = threading.Thread(target=waiting)
    first.start()
    with gate._cv:
        assert gate._cv.wait_for(lambda: gate._waiting == 1, 10)
        busy.__exit__(None, None, None)  # the slot frees while this thread still holds the lock...
        with gate.grading():  # ...and asks again at once, before the waiting one could wake
            order.append("second")
    first.join(10)
    assert order == ["first", "second"]


def test_the_embedded_model_grades_one_at_a_time_an_endpoint_several(settings, items):
    for slots, expected in ((1, 1), (3, 3)):
        llm = Recording(concurrency=slots, delay=0.3)
        llm.queue(*[REPLY] * 6)
        svc = service_over(settings, items, llm)
        q = Question.from_item(items[0])
        recs = [svc.engine.record(q.id, q.question, f"answer number {n} with {slots} slots", "grade") for n in range(6)]
        threads = [threading.Thread(target=svc.grade, args=(r,)) for r in recs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert llm.most_in_flight == expected
        assert all(svc.engine.answer(r.id).status == "graded" for r in recs)
        svc.close()


def test_submit_is_atomic_one_of_two_racing_answers_wins(settings, items):
    svc = service_over(settings, items, FakeLLM())
    s = svc.start("ann", count=2, seed=1)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def answer(text):
        barrier.wait()
        try:
            results.append(svc.reply(s, text))  # both hold the same stale view of the session
        except ConflictError as e:
            errors.append(e)

    threads = [threading.Thread(target=answer, args=(t,)) for t in ("first window", "second window")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 1 and len(errors) == 1
    assert "already answered" in errors[0].message and "--resume" in errors[0].hint
    rows = svc.engine.answers(s)
    assert [(r.position, r.status) for r in rows] == [(0, PENDING)]
    assert svc.session(s.id).position == 1
    svc.pass_on(svc.session(s.id))
    assert [r.status for r in svc.engine.answers(s)] == [PENDING, SKIPPED] and svc.current_item(s) is None


def test_the_grader_loads_in_the_background_and_a_grading_waits_for_it(settings, items):
    loaded = threading.Event()
    llm = FakeLLM([REPLY])

    def load():
        assert loaded.wait(10)
        return Grader(llm, check_topic=False)

    engine = SessionEngine(Store(settings.db_path), items, decode=Grade.from_dict)
    svc = InterviewService(engine, load=load, background=True)
    s = svc.start("ann", count=1, seed=2)  # the question is there before the model
    assert svc.current_item(s) is not None and not svc.loaded
    svc.prepare(svc.current_item(s))  # asked before the model exists: runs once it does
    item = svc.engine.items[s.question_ids[0]]
    rec = svc.reply(s, item.answer)  # the reference answer, submitted before the model finished loading
    stages, done, told = [], [], threading.Event()
    t = threading.Thread(target=lambda: done.append(svc.grade(rec, stage=lambda m: (stages.append(m), told.set()))))
    t.start()
    assert told.wait(10) and stages[0].startswith("loading the model")
    assert not done  # it cannot finish: load() is still blocked on `loaded`
    loaded.set()
    t.join(10)
    # Graded once by the loaded grader: the grade the same model reply gives the same answer.
    expected = Grader(FakeLLM([REPLY]), check_topic=False).grade(Question.from_item(item), item.answer)
    assert done and done[0].model == "fake" and len(llm.calls) == 1
    assert done[0].overall == expected.overall >= 7, (done[0].overall, expected.overall)
    assert svc.engine.answer(rec.id).status == "graded"
    assert "grading…" in stages
    assert svc.warmups_idle(10) and svc.warmed == [svc.engine.items[s.question_ids[0]].id]
    assert svc.close()


def test_a_loading_error_reaches_the_grading_that_waits_and_the_answer_stays(settings, items):
    from bot.errors import ModelError

    def load():
        raise ModelError("the model file is broken", "delete it")

    svc = InterviewService(SessionEngine(Store(settings.db_path), items, decode=Grade.from_dict), load=load, background=True)
    s = svc.start("ann", count=1, seed=2)
    rec = svc.reply(s, "an answer")
    with pytest.raises(ModelError, match="broken"):
        svc.grade(rec)
    assert svc.engine.answer(rec.id).status == PENDING and svc.ungraded(s)
    assert svc.close()


def test_close_waits_for_a_running_warm_up_and_later_warm_ups_do_not_start(settings, items):
    llm = Recording()
    a, b = marked(items[0]), marked(items[1])
    llm.hold = {a.id: threading.Event()}
    svc = service_over(settings, items, llm)
    svc.prepare(a)
    assert llm.started.setdefault(a.id, threading.Event()).wait(10)
    closed = []
    t = threading.Thread(target=lambda: closed.append(svc.close(timeout=10)))
    t.start()
    deadline = time.monotonic() + 10
    while not svc._gate.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    svc.prepare(b)
    assert closed == []  # cannot have returned: the warm-up of a is held inside the model
    llm.hold[a.id].set()
    t.join(10)
    assert closed == [True]
    assert svc.warmed == [a.id] and not any(b.id in p for _, p in llm.prepared)


def test_the_follow_up_prefix_is_warmed_last_and_only_when_follow_ups_are_on(settings, items):
    from bot import followups

    llm = Recording()
    a, b = marked(items[0]), marked(items[1])
    svc = service_over(settings, items, llm)
    svc.prepare(a)
    assert svc.warmups_idle(10)
    warmed = [p for _, p in llm.prepared if a.id in p]
    assert len(warmed) >= 2 and warmed[-1] == followups.prefix(a)[1]  # the grading prefix first
    assert a.reference.strip()[:30] in warmed[-1]
    svc.follow_ups = 0  # a face that asks no follow-ups
    svc.prepare(b)
    assert svc.warmups_idle(10)
    assert [p for _, p in llm.prepared if b.id in p] and followups.prefix(b)[1] not in [p for _, p in llm.prepared]
    assert svc.close()


def test_a_replica_keeps_no_lock_for_the_sessions_it_served_and_a_turn_still_excludes(settings, items):
    """Slack handles each message of a session under its turn: the locks of a replica that served
    thousands of sessions stay with it only while a message holds or waits for one."""
    svc = service_over(settings, items, FakeLLM())
    for session_id in range(2000):
        with svc.turn(session_id):
            assert svc.turn_busy(session_id)
    assert len(svc._turns) == 0 and not svc.turn_busy(1)

    inside, overlaps = {}, []

    def messages(session_id: int):
        for _ in range(60):
            with svc.turn(session_id):
                inside[session_id] = inside.get(session_id, 0) + 1
                if inside[session_id] != 1:
                    overlaps.append(session_id)
                time.sleep(0.0002)  # a handler's work: lets the other threads of the session queue up
                inside[session_id] -= 1

    threads = [threading.Thread(target=messages, args=(n % 3,)) for n in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not overlaps and len(svc._turns) == 0


def test_the_warmed_list_keeps_only_the_latest_question_ids(settings, items):
    from bot.service import WARMED_KEPT

    svc = service_over(settings, items, FakeLLM())
    svc.follow_ups = 0
    asked = [items[n % len(items)] for n in range(WARMED_KEPT + 30)]
    for item in asked:
        svc.prepare(item)
        assert svc.warmups_idle(10)
    assert svc.warmed == [i.id for i in asked[-WARMED_KEPT:]]
    assert svc.close()


class FailingPrefix(FakeLLM):
    """The fake model, failing to evaluate one prompt prefix (a model that ran out of memory, a
    broken cache file)."""

    def __init__(self, prefix: str):
        super().__init__()
        self.fails = prefix

    def prepare(self, system, user_prefix):
        if user_prefix == self.fails:
            raise RuntimeError("llama_decode returned -3")
        super().prepare(system, user_prefix)


def test_a_failed_warm_up_is_logged_with_its_error_and_the_worker_goes_on(settings, items, caplog):
    import logging

    from bot import followups

    a, b = Question.from_item(items[0]), Question.from_item(items[1])
    llm = FailingPrefix(followups.prefix(a)[1])
    svc = service_over(settings, items, llm)
    with caplog.at_level(logging.WARNING, logger="bot.service"):
        svc.prepare(a)
        assert svc.warmups_idle(10)
        svc.prepare(b)  # the worker survived: the next question is warmed
        assert svc.warmups_idle(10)
    (failed,) = [r for r in caplog.records if r.name == "bot.service"]
    assert failed.levelno == logging.WARNING and a.id in failed.getMessage() and "follow-up" in failed.getMessage()
    assert failed.exc_info[0] is RuntimeError and "llama_decode" in str(failed.exc_info[1])
    assert svc.warmed == [a.id, b.id] and followups.prefix(b)[1] in [p for _, p in llm.prepared]
    assert svc.close()


def test_a_follow_up_the_model_could_not_write_is_logged_and_the_template_asked(settings, corpus_items, caplog):
    import logging

    from bot import followups
    from bot.errors import LLMError

    item = next(i for i in corpus_items if i.id == "dl-006")
    q = Question.from_item(item)
    grade = Grader(None, check_topic=False).grade(q, "BN 推理时使用训练中累积的滑动平均统计量。")
    llm = FailingPrefix(followups.prefix(q)[1]).queue(LLMError("The endpoint failed with HTTP 503.", "Retry."))
    svc = service_over(settings, corpus_items, llm)
    with caplog.at_level(logging.WARNING, logger="bot.followups"):
        f = svc.follow_up(item, grade)
    assert f.by == "template"  # the candidate is still asked
    logged = [r for r in caplog.records if r.name == "bot.followups"]
    assert [r.exc_info[0] for r in logged] == [RuntimeError, LLMError]
    assert all(q.id in r.getMessage() and r.levelno == logging.WARNING for r in logged)
    assert svc.close()


def test_showing_a_question_loads_the_judge_its_answer_needs_in_the_background(settings, corpus_items):
    """A behavioural question's judge is its own (bot/judge/structural): loaded when the question is
    shown, not when its answer is submitted."""
    from bot.corpus import load_items
    from bot.judge import model as judge_model
    from tests.conftest import PACKS

    story = load_items([PACKS / "behavioural-en.md"])[0]
    assert Question.from_item(story).structural
    judge_model._JUDGES.pop(True, None)  # this process has not loaded it
    svc = service_over(settings, [*corpus_items, story], FakeLLM())
    svc.prepare(story)
    deadline = time.monotonic() + 30
    while True not in judge_model._JUDGES and time.monotonic() < deadline:
        time.sleep(0.05)
    assert judge_model._JUDGES[True].mask == "cross"
    svc.close()
