"""The application layer that every face calls: the terminal, Slack and transcript scoring.

Faces keep only their own I/O (reading a line, posting a Slack message, rendering). What they
share lives here, once:
- loading the grader in the background, so a face shows its first question at once;
- use of the model by the backend's declared capabilities (`LLM.concurrency`): gradings first, in
  arrival order; a warm-up only when no grading runs or waits;
- warm-ups of a question's prompt prefix on one worker, newest question first, stale ones dropped;
- sessions: start, the current question, atomic submit and skip, grade, finish, summary;
- one turn at a time per session (two quick Slack replies never race for a question);
- clean shutdown: no thread is left inside the model when the interpreter exits.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Callable

from bot.errors import InterviewError, NotFoundError, UsageError
from bot.grading.grader import Grader
from bot.grading.question import Question
from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL, Grade
from bot.grading.signals import title as signal_title
from bot.llm.base import yielding_to
from bot.sessions import FOLLOW_UP, GRADED, LEASE_S, AnswerRecord, Session, SessionEngine, Store

# What the faces show of the core, named here: a face imports nothing of bot.sessions, bot.coach,
# bot.db or bot.grading (tests/test_architecture.py), so that what it may reach is this module's.
__all__ = ["InterviewService", "resolve_question", "Question", "Grade", "Session", "AnswerRecord", "Stage", "signal_title",
           "COVERED", "PARTIAL", "MISSING", "CONTRADICTED", "GRADED", "FOLLOW_UP", "LEASE_S"]

Stage = Callable[[str], None]
_CONFIGURED = object()  # InterviewService.open without `llm`: the configured backend's, loaded when needed
WARMED_KEPT = 100  # the latest question ids warmed that WarmUps.done keeps (a replica runs for months)

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # shown where the app configures logging (Slack), not in a terminal interview


def grade_language(grade: Grade) -> str:
    from bot.grading.prechecks import language

    return language(grade.answer)  # told what a slow call is doing ("loading the model…"), for a spinner


class ModelGate:
    """Who may use the model now. `slots` calls run at once; gradings are let in first come,
    first served (under load, one person's answer must not wait behind later ones), a waiting
    grading always before a warm-up, and warm-ups stop being let in once the gate closes."""

    def __init__(self, slots: int):
        self._cv = threading.Condition()
        self._slots = self._free = max(1, slots)
        self._queue: deque[object] = deque()  # gradings waiting for a slot, in arrival order
        self._warming = 0  # warm-ups running
        self.closed = False

    @property
    def _waiting(self) -> int:
        return len(self._queue)

    def wanted(self) -> bool:
        """A grading waits for a slot: a running warm-up should give way (bot.llm.base.should_yield)."""
        return bool(self._queue)

    @contextmanager
    def grading(self, stage: Stage | None = None):
        me = object()
        with self._cv:
            self._queue.append(me)
            try:
                if self._free == 0 and stage is not None:
                    stage("preparing the question…" if self._warming else "waiting for another grading…")
                while self._free == 0 or self._queue[0] is not me:
                    self._cv.wait()
                self._free -= 1
            finally:
                self._queue.remove(me)
                self._cv.notify_all()  # the next in line may take a slot still free
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def warmup(self):
        """Yields True when the warm-up may run, False when the gate closed while it waited."""
        with self._cv:
            while not self.closed and (self._free == 0 or self._waiting):
                self._cv.wait()
            if self.closed:
                yield False
                return
            self._free -= 1
            self._warming += 1
        try:
            yield True
        finally:
            with self._cv:
                self._warming -= 1
            self._release()

    def _release(self) -> None:
        with self._cv:
            self._free += 1
            self._cv.notify_all()

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._cv.notify_all()

    def drain(self, timeout: float | None) -> bool:
        """Wait until no grading or warm-up holds the model."""
        with self._cv:
            return self._cv.wait_for(lambda: self._free == self._slots, timeout)


class WarmUps:
    """One worker that evaluates question prefixes while the candidate types. Only the newest
    request is kept: asking for question 3 drops a question 2 that has not started."""

    def __init__(self, gate: ModelGate, grader: Grader, then: Callable[[Question], None] | None = None):
        self._gate, self._grader, self._then = gate, grader, then
        self._cv = threading.Condition()
        self._wanted: Question | None = None
        self._later: Question | None = None  # second phase (`then`) of the last question warmed
        self._busy = False
        # the latest question ids warmed, in order (what a test and a benchmark read)
        self.done: deque[str] = deque(maxlen=WARMED_KEPT)
        self._thread = threading.Thread(target=self._run, daemon=True, name="warm-ups")
        self._thread.start()

    def want(self, q: Question) -> None:
        with self._cv:
            self._wanted = q
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._wanted is None and self._later is None and not self._gate.closed:
                    self._cv.wait()
                if self._gate.closed:
                    return
            with self._gate.warmup() as allowed:
                if not allowed:
                    return
                with self._cv:  # the newest request, taken only once the model is free
                    q, self._wanted = self._wanted, None
                    first = q is not None
                    if not first:  # nothing new: the second phase of the last one
                        q, self._later = self._later, None
                    self._busy = q is not None
                if q is None:
                    continue
                try:  # failures only cost speed
                    with yielding_to(self._gate.wanted):
                        (self._grader.prepare if first else self._then)(q)
                except Exception:  # noqa: BLE001 - a warm-up must never break the worker
                    log.warning("Warm-up of %s (%s) failed; its answers are graded cold", q.id,
                                "grading prefix" if first else "follow-up prefix", exc_info=True)
                finally:
                    with self._cv:
                        self._busy = False
                        if first:
                            self.done.append(q.id)
                            # The follow-up's prefix goes last, as its own turn on the model: an
                            # answer that arrives meanwhile is graded first.
                            self._later = q if self._then is not None else None
                        self._cv.notify_all()

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is wanted or running (tests, benchmarks)."""
        with self._cv:
            return self._cv.wait_for(lambda: self._wanted is None and self._later is None and not self._busy,
                                     timeout)

    def stop(self) -> None:
        with self._cv:
            self._cv.notify_all()


class TurnLocks:
    """One lock per session, kept only while a message holds or waits for it: a lock for every
    session a replica ever served grew for the life of the process."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[int, tuple[threading.Lock, int]] = {}  # session -> (lock, holders and waiters)

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)

    @contextmanager
    def hold(self, session_id: int):
        with self._guard:
            lock, users = self._locks.get(session_id) or (threading.Lock(), 0)
            self._locks[session_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users = self._locks[session_id][1] - 1
                if users:
                    self._locks[session_id] = (lock, users)
                else:  # nobody waits: the next message of the session makes a new one
                    del self._locks[session_id]

    def busy(self, session_id: int) -> bool:
        with self._guard:
            lock, _ = self._locks.get(session_id) or (None, 0)
        return lock is not None and lock.locked()


def resolve_question(items: list, text: str, open_index: Callable[[], object], threshold: float):
    """(the corpus item, None) for a corpus id; else (the item, the match) whose question is
    closest to `text` in the index `open_index` opens (only then: it embeds the corpus), matched
    with at least `threshold` confidence. A function, not a method: a face asks it before it
    loads the model for the grading."""
    by_id = {i.id: i for i in items}
    item = by_id.get(text.strip())
    if item is not None:
        return item, None
    from bot.matching import QuestionMatcher

    m = QuestionMatcher(open_index(), by_id).best(text)
    if not m.matched:
        raise NotFoundError(f"No corpus question matches {text!r} (closest: {m.question_id}, "
                            f"match confidence {m.confidence:.2f} < {threshold}).",
                            "Pass a corpus id (see `interview corpus list`) or rephrase the question.")
    return by_id[m.question_id], m


def warm_shared(settings) -> bool:
    """Evaluate the prompt prefix every question shares and keep it in the data dir, so a first
    grade there evaluates only its own question (the embedded model only: an endpoint keeps its
    own cache). False where there is nothing to keep."""
    if settings.backend != "local":
        return False
    from bot.llm import get_llm

    llm = get_llm(settings)
    try:
        if not llm.caches_prefix:
            return False
        Grader(llm).prepare_shared()
        return True
    finally:
        llm.close()


class InterviewService:
    """Sessions and grading for every face. Built over an engine whose grader is ready, or with
    `load`, a function that builds the grader (the embedded model takes seconds to load): started
    at once in the background when `background` is set, else on the first grading."""

    def __init__(self, engine: SessionEngine, *, load: Callable[[], Grader] | None = None,
                 background: bool = False):
        self.engine = engine
        self._load_fn = load
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()
        self._load_error: InterviewError | None = None
        self._gate: ModelGate | None = None
        self._warmups: WarmUps | None = None
        self._closing = False
        self._turns = TurnLocks()
        self._coach = None
        self.warm_follow_ups = True  # a face that asks no follow-ups turns this off
        if engine.grader is not None:
            self._ready(engine.grader)
        elif load is not None and background:
            threading.Thread(target=self._load, daemon=True, name="load grader").start()

    @classmethod
    def open(cls, settings, items, *, llm=_CONFIGURED, grader: Grader | None = None,
             background: bool = False) -> "InterviewService":
        """The service over the configured history database, grading with `llm` (None: without a
        model), or `grader`, or else the configured LLM backend's (loaded in the background when
        `background` is set, else on the first grading: a face that never grades never loads it)."""
        if llm is not _CONFIGURED:
            grader = Grader(llm)

        def load() -> Grader:
            from bot.llm import get_llm

            return Grader(get_llm(settings))

        return cls(SessionEngine(Store(settings.database_url), items, grader=grader, lease=settings.claim_lease),
                   load=load, background=background)

    # --- the grader -----------------------------------------------------------------------
    def _ready(self, grader: Grader) -> None:
        self.engine.grader = grader
        self._gate = ModelGate(grader.llm.concurrency)
        if grader.llm.caches_prefix:
            self._warmups = WarmUps(self._gate, grader, then=self._warm_follow_up)
        if self._closing:  # close() ran while the model loaded
            self._shut()
        self._loaded.set()

    def _warm_follow_up(self, q: Question) -> None:
        """The follow-up prompt's prefix of a question (after its grading prefixes), so that a
        follow-up evaluates only the point and the answer: 10.6 s -> see bench/followups.py."""
        llm = self.engine.grader.llm
        # A slow model leaves follow-ups on points with an aspect to the template (bot.followups):
        # its prompt is worth warming only where some point has none.
        needed = not llm.writes_slowly or any(
            len(q.aspects.get(lang, [])) < len(q.key_points) for lang in {q.language, "zh", "en"})
        if self.warm_follow_ups and needed:
            from bot import followups

            llm.prepare(*followups.prefix(q))

    def _load(self) -> None:
        with self._load_lock:
            if self._loaded.is_set():
                return
            try:
                if self._closing:
                    raise InterviewError("The interview is closing.")
                self._ready(self._load_fn())
            except InterviewError as e:
                self._load_error = e
                self._loaded.set()
            except BaseException as e:  # noqa: BLE001 - reported to whoever waits, not lost in a thread
                self._load_error = InterviewError(f"Internal error while loading the grader: {type(e).__name__}: {e}",
                                                  "Run again with INTERVIEW_DEBUG=1 and report the traceback.")
                self._loaded.set()

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set() and self._load_error is None

    def grader(self, stage: Stage | None = None) -> Grader:
        """The grader, waiting for it to load (or loading it now)."""
        if not self._loaded.is_set():
            if self._load_fn is None:
                raise InterviewError("This service has no grader.", "Build it with a grader or a loader.")
            if stage is not None:
                stage("loading the model… (once per start: a few seconds)")
            self._load()  # waits for a load in flight instead, then finds it done
        if self._load_error is not None:
            raise self._load_error
        return self.engine.grader

    # --- warm-ups and grading -------------------------------------------------------------
    def prepare(self, item) -> None:
        """Warm the question's prompt prefix in the background while the candidate types."""
        if item is None or self._closing:
            return
        q = item if isinstance(item, Question) else Question.from_item(item)
        if self._loaded.is_set():
            if self._warmups is not None:
                self._warmups.want(q)
            return

        def when_loaded():  # the model is still loading: warm once it is there
            self._loaded.wait()
            if self._warmups is not None and not self._closing:
                self._warmups.want(q)
        threading.Thread(target=when_loaded, daemon=True, name=f"warm-up {q.id}").start()

    def warmups_idle(self, timeout: float | None = None) -> bool:
        return self._warmups.idle(timeout) if self._warmups is not None else True

    @property
    def warmed(self) -> list[str]:
        return list(self._warmups.done) if self._warmups is not None else []

    def grade(self, rec: AnswerRecord, question: Question | None = None, *, stage: Stage | None = None,
              preview: Callable[[Grade], None] | None = None) -> Grade:
        """Grade a saved answer (marked `error` and the error raised when grading fails): an answer
        to a follow-up against the points it was asked about, unless `question` says otherwise.
        `preview` is shown the grade as soon as it is known without the model (where the score does
        not wait for it: `Grader.scores_without_model`), before the model adds its corrections."""
        question = question or self._question_of(rec)
        self.grader(stage)
        cached = self.engine.cached_grade(question, rec.answer, self.engine.grader.llm.name)
        if cached is not None:  # no need to wait for the model
            grade = self.engine.grade(rec, question)
        else:
            if preview is not None and self.engine.grader.scores_without_model:
                if stage is not None:
                    stage("grading…")
                preview(self.engine.grader.quick(question, rec.answer))
            with self._gate.grading(stage):
                if stage is not None:
                    stage("grading…")
                grade = self.engine.grade(rec, question)
        if rec.session_id is not None and rec.source == "session" and rec.question_id in self.engine.items:
            # The person's card for the item: when to ask it again (bot.coach).
            self.coach.record(self.engine.get(rec.session_id).owner, rec.question_id, grade.overall)
        return grade

    def grade_text(self, question, text: str, source: str, *, stage: Stage | None = None) -> Grade:
        """One answer outside a session (`interview grade`) to a Question or a corpus item: saved
        first, then graded."""
        question = question if isinstance(question, Question) else Question.from_item(question)
        return self.grade(self.engine.record(question, text, source=source), question, stage=stage)


    def follow_up(self, item, grade: Grade, *, exclude: set[int] | None = None, stage: Stage | None = None):
        """One question aimed at the most important key point the answer missed (None when nothing
        important is missing): written by the model, or a template without one."""
        from bot import followups

        q = Question.from_item(item)
        if followups.target(grade, exclude=exclude) is None:
            return None
        llm = self.grader(stage).llm
        if llm.name == "none":
            return followups.write(q, grade, None, grade_language(grade), exclude)
        with self._gate.grading(stage):
            if stage is not None:
                stage("thinking of a follow-up…")
            return followups.write(q, grade, llm, grade_language(grade), exclude)

    def answer_follow_up(self, rec: AnswerRecord, item, f, text: str, *, stage: Stage | None = None,
                         preview: Callable[[Grade], None] | None = None) -> Grade:
        """Save the follow-up's answer, then grade it against the targeted key points only."""
        saved = self.engine.record_follow_up(rec.session_id, rec.position, item.id, f.question, text,
                                             {"points": list(f.points), "by": f.by})
        return self.grade(saved, stage=stage, preview=preview)  # against the points kept with it (_question_of)

    def _question_of(self, rec: AnswerRecord) -> Question:
        """What a saved answer is graded against: its corpus item, or for an answer to a follow-up
        the item's points it was asked about (kept with the answer)."""
        if not rec.follow_up:
            return self.engine.question_for(rec)
        from bot import followups

        item = self.engine.items.get(rec.question_id)
        if item is None:
            raise NotFoundError(f"Answer {rec.id} is a follow-up whose question is no longer known.",
                                "Restore the item in corpus/, or skip it.")
        f = followups.FollowUp(rec.question, list(rec.follow_up["points"]), rec.follow_up.get("by", "template"))
        return followups.sub_question(Question.from_item(item), f)

    def score_transcript(self, text: str, name: str, *, index, **options):
        """Score a practice transcript (bot.transcripts.scoring.score_text's options), taking
        turns on the model with the other faces' gradings."""
        from bot.transcripts.scoring import score_text

        self.grader()
        return score_text(text, name, index=index, engine=self.engine,
                          grade=lambda rec, q: self.grade(rec, q), **options)

    # --- sessions -------------------------------------------------------------------------
    @property
    def coach(self):
        if self._coach is None:
            from bot.coach import Coach

            self._coach = Coach(self.engine)
        return self._coach

    def validate_start(self, owner: str, *, mode: str | None = None, topic: str | None = None, count: int = 5) -> None:
        """Raise what `start` would raise for a topic that matches nothing, or a review with
        nothing due, and write nothing: a face checks before it posts anything."""
        from bot.corpus import select_questions

        select_questions(list(self.engine.items.values()), topic, count)
        if mode == "review" and not self.coach.due(owner):
            raise self._nothing_due(owner)

    def _nothing_due(self, owner: str) -> UsageError:
        nxt = self.coach.upcoming(owner, limit=1)
        return UsageError("Nothing is due for review now" + (f" (next: {nxt[0]['item_id']} at {nxt[0]['due']})."
                                                             if nxt else "."), "Run `interview start` for new questions.")

    def start(self, owner: str, *, mode: str | None = None, count: int = 5, topic: str | None = None,
              seed: int | None = None, packs: list[str] | None = None, language: str | None = None,
              difficulty: str | None = None, **kw) -> Session:
        """A new session. With `mode` the coach plans it from the person's history: `mix` (due
        items first, then unseen ones from weak topics), `review` (only due), `new` (only unseen)."""
        from bot.corpus import narrow, select_questions

        if mode is None:
            return self.engine.start(owner, count=count, topic=topic, seed=seed, packs=packs, language=language,
                                     difficulty=difficulty, **kw)
        pool = narrow(list(self.engine.items.values()), packs=packs, language=language, difficulty=difficulty)
        if topic:
            pool = select_questions(pool, topic, len(pool), seed)
        chosen = self.coach.plan(owner, pool, count, mode, seed=seed)
        if not chosen:
            if mode == "review":
                raise self._nothing_due(owner)
            raise UsageError("You have answered every question of this selection.", "Use --review, or other packs.")
        return self.engine.start(owner, count=count, topic=topic, chosen=chosen, **kw)

    def session(self, session_id: int) -> Session:
        return self.engine.get(session_id)

    def latest_active(self, owner: str, channel: str | None = None) -> Session | None:
        return self.engine.latest_active(owner, channel)

    def current_item(self, s: Session):
        return self.engine.current_item(s)

    def submit(self, s: Session, text: str) -> AnswerRecord:
        """Save the answer and move on, atomically; grading is `grade(rec)`."""
        return self.engine.submit(s, text)

    def skip(self, s: Session) -> Session:
        return self.engine.skip(s)

    def ungraded(self, s: Session) -> list[AnswerRecord]:
        return self.engine.ungraded(s)

    def finish(self, s: Session, status: str = "finished") -> Session:
        return self.engine.finish(s, status)

    def wrap_up(self, s: Session) -> Session:
        """Finish the session unless answers still wait for a grade (`--resume` grades them)."""
        s = self.engine.get(s.id)
        return s if self.engine.ungraded(s) else self.engine.finish(s)

    def summary(self, s: Session) -> dict:
        return self.engine.summary(s)

    @contextmanager
    def turn(self, session_id: int):
        """One message of a session at a time, in order, across a face's threads."""
        with self._turns.hold(session_id):
            yield

    def turn_busy(self, session_id: int) -> bool:
        """Is a message of this session being handled in this process now?"""
        return self._turns.busy(session_id)

    # --- what the coach knows -------------------------------------------------------------
    def home_stats(self, owner: str, limit: int = 10) -> dict:
        return self.coach.home_stats(owner, limit)

    def export_history(self, owner: str) -> list[dict]:
        from bot.coach import export_lines

        return export_lines(self.engine.store, owner)

    def import_history(self, path, owner: str | None = None) -> tuple[int, int]:
        from bot.coach import import_lines

        return import_lines(self.engine.store, path, owner)

    # --- shutdown -------------------------------------------------------------------------
    def _shut(self) -> None:
        if self._gate is not None:
            self._gate.close()
        if self._warmups is not None:
            self._warmups.stop()

    @property
    def closed(self) -> bool:
        """close() was called: background rounds (the Slack app's sweep) stop."""
        return self._closing

    def close(self, timeout: float = 30.0) -> bool:
        """Stop warm-ups and wait for the model to be free, then free it. False when a call in
        the model did not end within `timeout`: the caller should then leave without the
        interpreter's teardown (it would free llama.cpp under the running call)."""
        self._closing = True
        self._shut()
        deadline = time.monotonic() + timeout
        if not self._loaded.is_set() and self._load_lock.locked() and not self._loaded.wait(timeout):
            return False
        if self._gate is not None and not self._gate.drain(max(0.0, deadline - time.monotonic())):
            return False
        grader = self.engine.grader
        return grader.llm.close(max(0.0, deadline - time.monotonic())) if grader is not None else True
