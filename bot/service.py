"""The application layer that every face calls: the terminal, Slack, the web page and transcript
scoring.

Faces keep only their own I/O (reading a line, posting a Slack message, rendering a page). What
they share lives here, once:
- the conversation: what a session asks now (`asking`: its question, or the open follow-up), an
  answer saved to it (`reply`), graded and followed by the next step (`go_on`: a follow-up on what
  it missed, kept in the session so a restart keeps it, or the next question); `answer` is both;
- grading a saved answer (`grade`): the grade cache, claims between replicas, the answer marked
  `error` when grading fails; the session store keeps answers and knows nothing of grading;
- loading the grader in the background, so a face shows its first question at once;
- use of the model by the backend's declared capabilities (`LLM.concurrency`): gradings first, in
  arrival order; a warm-up only when no grading runs or waits;
- warm-ups of a question's prompt prefix on one worker, newest question first, stale ones dropped;
- one turn at a time per session (two quick Slack replies never race for a question);
- clean shutdown: no thread is left inside the model when the interpreter exits.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from bot.corpus import Item, language_of
from bot.errors import ConflictError, InterviewError, NotFoundError, UsageError
from bot.grading import verdicts
from bot.grading.grader import Grader
from bot.grading.question import Question
from bot.grading.result import CONTRADICTED, COVERED, MISSING, PARTIAL, Grade
from bot.grading.signals import criterion as criterion_text
from bot.grading.version import grading_version
from bot.llm.base import yielding_to
from bot.sessions import ERROR, FOLLOW_UP, GRADED, LEASE_S, AnswerRecord, Session, SessionEngine, Store

# What the faces show of the core, named here: a face imports nothing of bot.sessions, bot.coach,
# bot.db or bot.grading (tests/test_architecture.py), so that what it may reach is this module's.
__all__ = ["InterviewService", "resolve_question", "Question", "Grade", "Session", "AnswerRecord", "Stage",
           "Prompt", "Turn", "criterion_text", "COVERED", "PARTIAL", "MISSING", "CONTRADICTED", "GRADED", "FOLLOW_UP",
           "QUESTION", "LEASE_S"]

QUESTION = "question"  # Prompt.kind of a session's own question (FOLLOW_UP: of its open follow-up)
Stage = Callable[[str], None]  # told what a slow call is doing ("loading the model…"), for a spinner
_CONFIGURED = object()  # InterviewService.open without `llm`: the configured backend's, loaded when needed
WARMED_KEPT = 100  # the latest question ids warmed that WarmUps.done keeps (a replica runs for months)

@dataclass
class Prompt:
    """What a session asks now: its question (QUESTION), or the open follow-up on the answer to it
    (FOLLOW_UP). `key` names it for a face that must tell a stale form from a fresh one."""
    kind: str
    session: Session
    item: Item
    text: str
    number: int  # the question's number in the session, from 1
    total: int

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.session.position if self.kind == QUESTION else self.number - 1}"


@dataclass
class Turn:
    """What came of an answer: its grade, or why grading failed (the answer stays saved, `error`),
    then what the session asks next (None: nothing is left; `follow_up` when that is a follow-up
    just asked on what the answer missed)."""
    answer: AnswerRecord
    grade: Grade | None
    error: InterviewError | None
    next: Prompt | None
    session: Session

    @property
    def follow_up(self) -> Prompt | None:
        return self.next if self.next is not None and self.next.kind == FOLLOW_UP else None


log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # shown where the app configures logging (Slack), not in a terminal interview


def grade_language(grade: Grade) -> str:
    return language_of(grade.answer)


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
    """Sessions, the conversation and grading for every face. Built with a `grader` that is ready,
    or with `load`, a function that builds one (the embedded model takes seconds to load): started
    at once in the background when `background` is set, else on the first grading. `follow_ups`:
    how many follow-up questions an answer may get (0: none)."""

    def __init__(self, engine: SessionEngine, *, grader: Grader | None = None,
                 load: Callable[[], Grader] | None = None, background: bool = False, follow_ups: int = 0):
        self.engine = engine
        self._grader: Grader | None = None
        self._load_fn = load
        self._loaded = threading.Event()
        self._load_lock = threading.Lock()
        self._load_error: InterviewError | None = None
        self._gate: ModelGate | None = None
        self._warmups: WarmUps | None = None
        self._closing = False
        self._turns = TurnLocks()
        self._coach = None
        self._judges_warmed: set[bool] = set()
        self._warm_lock = threading.Lock()
        self.follow_ups = follow_ups
        if grader is not None:
            self._ready(grader)
        elif load is not None and background:
            threading.Thread(target=self._load, daemon=True, name="load grader").start()

    @classmethod
    def open(cls, settings, items, *, llm=_CONFIGURED, grader: Grader | None = None,
             background: bool = False, replica: str | None = None) -> "InterviewService":
        """The service over the configured history database, grading with `llm` (None: without a
        model), or `grader`, or else the configured LLM backend's (loaded in the background when
        `background` is set, else on the first grading: a face that never grades never loads it).
        `replica`: this process's name where several grade from one database (Slack's replicas)."""
        if llm is not _CONFIGURED:
            grader = Grader(llm)

        def load() -> Grader:
            from bot.llm import get_llm

            return Grader(get_llm(settings))

        engine = SessionEngine(Store(settings.database_url), items, decode=Grade.from_dict, replica=replica,
                               lease=settings.claim_lease)
        return cls(engine, grader=grader, load=load, background=background, follow_ups=settings.follow_ups)

    # --- the grader -----------------------------------------------------------------------
    def _ready(self, grader: Grader) -> None:
        self._grader = grader
        self._gate = ModelGate(grader.llm.concurrency)
        if grader.llm.caches_prefix:
            self._warmups = WarmUps(self._gate, grader, then=self._warm_follow_up)
        if self._closing:  # close() ran while the model loaded
            self._shut()
        self._loaded.set()

    def _warm_follow_up(self, q: Question) -> None:
        """The follow-up prompt's prefix of a question (after its grading prefixes), so that a
        follow-up evaluates only the point and the answer: 10.6 s -> see bench/followups.py."""
        llm = self._grader.llm
        # A slow model leaves follow-ups on points with an aspect to the template (bot.followups):
        # its prompt is worth warming only where some point has none.
        needed = not llm.writes_slowly or any(
            len(q.aspects.get(lang, [])) < len(q.key_points) for lang in {q.language, "zh", "en"})
        if self.follow_ups > 0 and needed:
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
        return self._grader

    # --- warm-ups and grading -------------------------------------------------------------
    def prepare(self, item) -> None:
        """Warm the question's prompt prefix in the background while the candidate types."""
        if item is None or self._closing:
            return
        q = item if isinstance(item, Question) else Question.from_item(item)
        self._warm_judge(q)
        if self._loaded.is_set():
            if self._warmups is not None:
                self._warmups.want(q)
            return

        def when_loaded():  # the model is still loading: warm once it is there
            self._loaded.wait()
            if self._warmups is not None and not self._closing:
                self._warmups.want(q)
        threading.Thread(target=when_loaded, daemon=True, name=f"warm-up {q.id}").start()

    def _warm_judge(self, q: Question) -> None:
        """Load the key-point judge that will read the answer, in the background, once per kind of
        question (fact or behavioural): the first grade of a process does not wait for it."""
        with self._warm_lock:
            if q.structural in self._judges_warmed:
                return
            self._judges_warmed.add(q.structural)

        def load():
            try:
                verdicts.warm(q)
            except InterviewError:  # a missing judge: the grading that needs it says so, with the fix
                pass
        threading.Thread(target=load, daemon=True, name="load judge").start()

    def warmups_idle(self, timeout: float | None = None) -> bool:
        return self._warmups.idle(timeout) if self._warmups is not None else True

    @property
    def warmed(self) -> list[str]:
        return list(self._warmups.done) if self._warmups is not None else []

    def claim(self, rec: AnswerRecord) -> bool:
        """Take this replica's claim on a saved answer before showing that it is being graded:
        False when another replica grades it (it shows the grade). True without replicas."""
        return self.engine.claim(rec.id)

    def grade(self, rec: AnswerRecord, question: Question | None = None, *, stage: Stage | None = None,
              preview: Callable[[Grade], None] | None = None) -> Grade:
        """Grade a saved answer and keep the grade with it: an answer to a follow-up against the
        points it was asked about, unless `question` says otherwise. When grading fails the answer
        stays saved, marked `error`, and the error is raised; ConflictError when another replica
        holds it. `preview` is shown the grade as soon as its score is known, before the model writes
        its corrections (`bot.grading.grader.score_settled`): the same score and key points."""
        question = question or self._question_of(rec)
        grader = self.grader(stage)
        if not self.engine.claim(rec.id):
            raise ConflictError(f"Answer {rec.id} is being graded by another replica.")
        try:
            grade = self._cached(question, rec.answer, grader.llm.name)
            if grade is None:  # else no need to wait for the model
                with self._gate.grading(stage):
                    if stage is not None:
                        stage("grading…")
                    grade = grader.grade(question, rec.answer, early=preview)
        except InterviewError as e:
            self.engine.save_error(rec.id, str(e))
            raise
        except Exception as e:  # noqa: BLE001 - an unexpected bug must not lose the answer either
            self.engine.save_error(rec.id, f"{type(e).__name__}: {e}")
            raise
        if not self.engine.save_grade(rec.id, grade.to_dict(), overall=grade.overall, model=grade.model,
                                      version=grade.grading_version):
            # our lease ran out mid-call and another replica took the answer: its grade is the one kept
            raise ConflictError(f"Answer {rec.id} was taken over by another replica while it was graded.")
        if rec.session_id is not None and rec.source == "session" and rec.question_id in self.engine.items:
            # The person's card for the item: when to ask it again (bot.coach).
            self.coach.record(self.engine.get(rec.session_id).owner, rec.question_id, grade.overall)
        return grade

    def _cached(self, question: Question, text: str, model: str) -> Grade | None:
        """A stored grade of the same answer to the same question, made by the same grading
        version (prompts, schema, constants, weights, model) against the same reference and key
        points; anything else is graded again."""
        current = grading_version(model)
        for stored in self.engine.stored_grades(question.id, text, current):
            g = Grade.from_dict(stored)
            if g.grading_version == current and g.question_fingerprint == question.fingerprint():
                return g
        return None

    def grade_text(self, question, text: str, source: str, *, stage: Stage | None = None) -> Grade:
        """One answer outside a session (`interview grade`) to a Question or a corpus item: saved
        first, then graded."""
        question = question if isinstance(question, Question) else Question.from_item(question)
        return self.grade(self.engine.record(question.id, question.question, text, source=source), question,
                          stage=stage)

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

    # --- the conversation -----------------------------------------------------------------
    def asking(self, s: Session) -> Prompt | None:
        """What the session asks now: the open follow-up, else its question; None when no
        question is left or the session is over."""
        s = self.engine.get(s.id)
        if s.status != "active":
            return None
        total = len(s.question_ids)
        if (f := s.meta.get("follow_up")) and (item := self.engine.items.get(f["item_id"])) is not None:
            return Prompt(FOLLOW_UP, s, item, f["question"], f["position"] + 1, total)
        item = self.engine.current_item(s)
        return Prompt(QUESTION, s, item, item.question, s.position + 1, total) if item is not None else None

    def reply(self, s: Session, text: str, *, to: str | None = None) -> AnswerRecord:
        """Save `text` as the answer to what the session asks now (the open follow-up, closed in the
        same transaction, else the question, and the session moves on), before any grading.
        `to`: the Prompt.key the person saw; ConflictError when the session has moved on since
        (another tab, window or replica answered it)."""
        self._expect(s, to)
        if self.engine.get(s.id).meta.get("follow_up"):
            return self.engine.submit_follow_up(s.id, text)
        return self.engine.submit(s, text)

    def pass_on(self, s: Session, *, to: str | None = None) -> Session:
        """Skip what the session asks now: the open follow-up (its answer keeps the grade it has),
        else the question."""
        self._expect(s, to)
        s = self.engine.get(s.id)
        if s.meta.get("follow_up"):
            return self.engine.update_meta(s.id, follow_up=None)
        return self.engine.skip(s)

    def stop(self, s: Session) -> Session:
        """End the session now (`stop`): an open follow-up is dropped; saved answers are kept."""
        s = self.engine.update_meta(s.id, follow_up=None)
        return self.engine.finish(s, "stopped") if s.status == "active" else s

    def _expect(self, s: Session, to: str | None) -> None:
        if to is None:
            return
        now = self.asking(s)
        if now is None or now.key != to:
            raise ConflictError("This question was already answered or skipped elsewhere (another tab, window or "
                                "process).", "Reload to continue where the interview is now.")

    def answer(self, s: Session, text: str, *, stage: Stage | None = None,
               preview: Callable[[Grade], None] | None = None, graded: Callable[[Grade], None] | None = None,
               to: str | None = None) -> Turn:
        """An answer to what the session asks now, saved, graded and followed by the next step:
        `reply` then `go_on`."""
        return self.go_on(self.reply(s, text, to=to), stage=stage, preview=preview, graded=graded)

    def go_on(self, rec: AnswerRecord, *, stage: Stage | None = None, preview: Callable[[Grade], None] | None = None,
              graded: Callable[[Grade], None] | None = None) -> Turn:
        """Grade a saved answer of a session, then take the next step: a follow-up on the most
        important point it missed (while this answer has had fewer than `follow_ups`; kept in the
        session until answered or skipped, so a restart keeps it), else the next question.
        `graded(grade)` is called as soon as the grade is known, before a follow-up is written.
        A failed grading is the Turn's `error` (the answer stays saved); ConflictError when
        another replica holds the answer (that one takes the step)."""
        try:
            grade, error = self.grade(rec, stage=stage, preview=preview), None
        except ConflictError:
            raise
        except InterviewError as e:
            grade, error = None, e
        if grade is not None and graded is not None:
            graded(grade)
        if grade is not None and rec.session_id is not None:
            self._ask_follow_up(rec, stage)
        s = self.engine.get(rec.session_id) if rec.session_id is not None else None
        return Turn(rec, grade, error, self.asking(s) if s is not None else None, s)

    def _ask_follow_up(self, rec: AnswerRecord, stage: Stage | None) -> None:
        """Open a follow-up on the answer at the session's last answered question, whose grade
        says what it missed (an answer to a follow-up: the question's own answer's grade, with
        the points asked so far left out)."""
        s = self.engine.get(rec.session_id)
        item = self.engine.items.get(rec.question_id)
        if (self.follow_ups <= 0 or s.status != "active" or s.meta.get("follow_up") or item is None
                or rec.position != s.position - 1):
            return  # not the latest question (a resumed older answer), or a follow-up is open already
        target = rec.follow_up or {}
        asked = list(target.get("asked", target.get("points", []))) if rec.source == FOLLOW_UP else []
        main = next((a for a in self.engine.answers(s) if a.position == rec.position), None)
        if main is None or main.grade is None or len(asked) >= self.follow_ups:
            return
        try:
            f = self.follow_up(item, main.grade, exclude=set(asked), stage=stage)
        except InterviewError:
            return  # a follow-up is a bonus: go on with the next question
        if f is not None:
            self.engine.update_meta(s.id, follow_up={"position": rec.position, "item_id": item.id,
                                                     "question": f.question, "points": list(f.points), "by": f.by,
                                                     "asked": asked + list(f.points)})

    def _question_of(self, rec: AnswerRecord) -> Question:
        """What a saved answer is graded against: its corpus item, or for an answer to a follow-up
        the item's points it was asked about (kept with the answer)."""
        item = self.engine.items.get(rec.question_id)
        if item is None and rec.follow_up:
            raise NotFoundError(f"Answer {rec.id} is a follow-up whose question is no longer known.",
                                "Restore the item in corpus/, or skip it.")
        if item is None:
            raise NotFoundError(f"Question {rec.question_id} is no longer in the corpus.",
                                "Restore the item in corpus/ to grade this answer.")
        if not rec.follow_up:
            return Question.from_item(item)
        from bot import followups

        f = followups.FollowUp(rec.question, list(rec.follow_up["points"]), rec.follow_up.get("by", "template"))
        return followups.sub_question(Question.from_item(item), f)

    def score_transcript(self, text: str, name: str, *, index, shown: Callable[[Exception], Exception] | None = None,
                         **options):
        """Score a practice transcript (bot.transcripts.scoring.score_text's options), taking
        turns on the model with the other faces' gradings. `shown(error)`: what a face lets its
        reader see of an answer's grading error (Slack's hides the machinery's details)."""
        from bot.transcripts.scoring import score_text

        self.grader()

        def grade(rec: AnswerRecord, q: Question) -> Grade:
            try:
                return self.grade(rec, q)
            except Exception as e:  # noqa: BLE001 - a bug too: the scorer marks this answer, a log keeps it
                if shown is None:
                    raise
                raise shown(e) from None

        return score_text(text, name, index=index, corpus=self.engine.items, grade=grade,
                          save=lambda q, answer: self.engine.record(q.id, q.question, answer, "transcript"), **options)

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

    @property
    def items(self) -> dict[str, Item]:
        """The corpus items by id (the question bank this service asks from)."""
        return self.engine.items

    @property
    def store(self) -> Store:
        """The history database, for a face's own tables (Slack's events, reminders, turns)."""
        return self.engine.store

    @property
    def lease(self) -> float:
        return self.engine.lease

    def serve_as(self, replica: str) -> None:
        """Grade only under claims held by `replica` (this process's name), as one of several
        processes over one database (Slack's replicas)."""
        self.engine.replica = replica

    def session(self, session_id: int) -> Session:
        return self.engine.get(session_id)

    def sessions(self, owner: str | None = None, limit: int = 20) -> list[Session]:
        return self.engine.list_sessions(owner, limit)

    def session_by_thread(self, thread: str) -> Session | None:
        return self.engine.find_by_thread(thread)

    def session_by_meta(self, key: str, value: str) -> Session | None:
        return self.engine.find_by_meta(key, value)

    def answers(self, s: Session, follow_ups: bool = False) -> list[AnswerRecord]:
        return self.engine.answers(s, follow_ups)

    def saved_answer(self, answer_id: int) -> AnswerRecord:
        return self.engine.answer(answer_id)

    def orphans(self, channel: str) -> list[AnswerRecord]:
        """Saved answers of `channel` that no live process grades (bot.sessions.SessionEngine.orphans)."""
        return self.engine.orphans(channel)

    def latest_active(self, owner: str, channel: str | None = None) -> Session | None:
        return self.engine.latest_active(owner, channel)

    def current_item(self, s: Session):
        return self.engine.current_item(s)

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
        grader = self._grader
        return grader.llm.close(max(0.0, deadline - time.monotonic())) if grader is not None else True
