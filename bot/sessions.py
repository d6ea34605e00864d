"""The session store: sessions, their answers and the claims on them. UI-agnostic, and it knows
nothing of grading: the service (bot.service) grades a saved answer and hands the grade back here
as JSON; `decode` turns a stored grade into what the service reads (bot.grading.result.Grade).

State lives in the history database (bot.db: a SQLite file in the data dir, or PostgreSQL). An
answer is committed *before* grading starts, so a crash, Ctrl-C or a dead endpoint never loses it:
the answer stays `pending` and is graded on resume.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.corpus import Item, narrow, select_questions
from bot.db import Database
from typing import Any, Callable

from bot.errors import ConflictError, NotFoundError, StoreError, UsageError
from bot.schema import MIGRATIONS

INSERT_ANSWER = ("INSERT INTO answers(session_id, position, question_id, question, answer, content_hash, status, "
                 "source, created_at, claimed_by, claimed_at, follow_up) VALUES (:session_id, :position, :question_id, "
                 ":question, :answer, :content_hash, :status, :source, :created_at, :claimed_by, :claimed_at, "
                 ":follow_up)")

PENDING, GRADED, ERROR, SKIPPED = "pending", "graded", "error", "skipped"
# How long a replica's claim on an answer holds without being renewed (it is renewed when the model
# is free to grade it): past that, the replica is taken for dead and another may grade the answer.
LEASE_S = 120.0
FOLLOW_UP = "follow-up"  # answers.source of an answer to a follow-up question
THREAD_KEY = "thread_ts"  # the meta key of a session's thread (Slack's), kept in sessions.thread too


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _ago(seconds: float) -> str:
    # the same text format as _now(): claimed_at compares as text on both engines
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat(timespec="seconds")


def content_hash(question_id: str, answer: str) -> str:
    return hashlib.sha256(f"{question_id}\x00{answer.strip()}".encode("utf-8")).hexdigest()


class Store:
    """The history: `target` is a database URL (INTERVIEW_DATABASE_URL) or a SQLite file's path."""

    def __init__(self, target: str | Path):
        self.db = Database(target)
        self.path = self.db.path  # the SQLite file; None on PostgreSQL
        self.dialect = self.db.dialect
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"Could not create the data dir {self.path.parent}: {e.strerror or e}.",
                                 "Check that INTERVIEW_HOME is writable.") from None
        elsewhere = "INTERVIEW_HOME at another data dir" if self.path else "INTERVIEW_DATABASE_URL at another database"
        # first: a newer database is refused before anything is written to it
        self.db.migrate(MIGRATIONS, hint=f"Upgrade interview-bot, or point {elsewhere}.")
        self.db.use_wal()

    def connect(self, lock: str | None = None):
        """One transaction (bot.db.Database.transaction): safe from any thread (Slack's lazy
        listeners). `lock` names a write lock held until it ends."""
        return self.db.transaction(lock)


@dataclass
class Session:
    id: int
    owner: str
    channel: str
    topic: str | None
    question_ids: list[str]
    position: int
    status: str
    meta: dict
    created_at: str

    @property
    def done(self) -> bool:
        return self.position >= len(self.question_ids) or self.status != "active"

    @classmethod
    def from_row(cls, r) -> "Session":
        return cls(r["id"], r["owner"], r["channel"], r["topic"], json.loads(r["question_ids"]),
                   r["position"], r["status"], json.loads(r["meta"]), r["created_at"])


@dataclass
class AnswerRecord:
    id: int
    session_id: int | None
    position: int | None
    question_id: str
    question: str
    answer: str
    status: str
    grade: Any | None  # what the store's `decode` makes of the stored grade (the service's: a Grade)
    error: str | None
    source: str = "session"  # session | follow-up | grade | transcript
    follow_up: dict | None = None  # a follow-up answer's target: {"points": [key point indexes], "by": ...}

    @classmethod
    def from_row(cls, r, decode: Callable[[dict], Any]) -> "AnswerRecord":
        grade = decode(json.loads(r["grade"])) if r["grade"] else None
        target = json.loads(r["follow_up"]) if r.get("follow_up") else None
        return cls(r["id"], r["session_id"], r["position"], r["question_id"], r["question"], r["answer"],
                   r["status"], grade, r["error"], r["source"], target)


class SessionEngine:
    """`replica`: this process's name when several processes grade from one database (the Slack
    app's replicas). An answer is then graded only under a claim (claimed_by/claimed_at on its
    row), so two replicas never both grade it, and one whose claim expired (its process died) is
    taken over. Without it (the terminal: one person at one keyboard) there are no claims, and
    `--resume` grades whatever is pending."""

    def __init__(self, store: Store, items: list[Item], *, decode: Callable[[dict], Any], replica: str | None = None,
                 lease: float = LEASE_S):
        self.store = store
        self.items = {i.id: i for i in items}
        self.replica = replica
        self.lease = lease
        # a stored grade's JSON -> what AnswerRecord.grade holds: the grading's type (bot.grading.result.Grade),
        # given by whoever builds the store (bot.service), so that the store needs nothing of the grading
        self.decode = decode

    def _record(self, row) -> "AnswerRecord":
        return AnswerRecord.from_row(row, self.decode)

    # --- sessions -------------------------------------------------------------------------
    def start(self, owner: str, *, topic: str | None = None, count: int = 5, channel: str = "terminal",
              meta: dict | None = None, seed: int | None = None, packs: list[str] | None = None,
              language: str | None = None, difficulty: str | None = None, chosen: list[Item] | None = None) -> Session:
        """A new session: `chosen` items (the coach's plan), else `count` drawn from the filters."""
        if count < 1:
            raise UsageError(f"--count is {count}; ask for at least 1 question.")
        if chosen is None:
            pool = narrow(list(self.items.values()), packs=packs, language=language, difficulty=difficulty)
            chosen = select_questions(pool, topic, count, seed)
        now = _now()
        meta = meta or {}
        with self.store.connect() as db:
            new_id = db.insert(
                "INSERT INTO sessions(owner, channel, topic, question_ids, meta, thread, created_at, updated_at)"
                " VALUES (:owner, :channel, :topic, :question_ids, :meta, :thread, :now, :now)",
                owner=owner, channel=channel, topic=topic, question_ids=json.dumps([i.id for i in chosen]),
                meta=json.dumps(meta), thread=meta.get(THREAD_KEY), now=now)
            return self.get(new_id, db)

    def get(self, session_id: int, db=None) -> Session:
        if db is None:
            with self.store.connect() as db:
                return self.get(session_id, db)
        row = db.execute("SELECT * FROM sessions WHERE id=:id", id=session_id).first()
        if row is None:
            raise NotFoundError(f"No session {session_id}.", "List sessions with `interview history`.")
        return Session.from_row(row)

    def latest_active(self, owner: str, channel: str | None = None) -> Session | None:
        q = "SELECT * FROM sessions WHERE owner=:owner AND status='active'"
        if channel:
            q += " AND channel=:channel"
        with self.store.connect() as db:
            row = db.execute(q + " ORDER BY id DESC LIMIT 1", owner=owner, channel=channel).first()
        return Session.from_row(row) if row else None

    def update_meta(self, session_id: int, **changes) -> Session:
        """Set keys of a session's face data (None removes a key), in one transaction."""
        with self.store.connect(lock=f"session {session_id}") as db:
            meta = self.get(session_id, db).meta
            for k, v in changes.items():
                if v is None:
                    meta.pop(k, None)
                else:
                    meta[k] = v
            db.execute("UPDATE sessions SET meta=:meta, thread=:thread WHERE id=:id",
                       meta=json.dumps(meta, ensure_ascii=False), thread=meta.get(THREAD_KEY), id=session_id)
            return self.get(session_id, db)

    def find_by_thread(self, thread: str) -> Session | None:
        """The session whose meta THREAD_KEY is `thread`, the newest if several: an index lookup."""
        with self.store.connect() as db:
            row = db.execute("SELECT * FROM sessions WHERE thread = :thread ORDER BY id DESC LIMIT 1",
                             thread=thread).first()
        return Session.from_row(row) if row else None

    def find_by_meta(self, key: str, value: str) -> Session | None:
        with self.store.connect() as db:
            row = db.execute(f"SELECT * FROM sessions WHERE {db.json_text('meta', ':key')} = :value "
                             "ORDER BY id DESC LIMIT 1", key=key, value=value).first()
        return Session.from_row(row) if row else None

    def list_sessions(self, owner: str | None = None, limit: int = 20) -> list[Session]:
        q = "SELECT * FROM sessions" + (" WHERE owner=:owner" if owner else "")
        with self.store.connect() as db:
            return [Session.from_row(r) for r in db.execute(q + " ORDER BY id DESC LIMIT :limit", owner=owner,
                                                            limit=limit)]

    def current_item(self, s: Session) -> Item | None:
        s = self.get(s.id)
        if s.done:
            return None
        qid = s.question_ids[s.position]
        if qid not in self.items:
            raise NotFoundError(f"Question {qid} of session {s.id} is no longer in the corpus.",
                                "Skip it, or restore the item in corpus/.")
        return self.items[qid]

    def _set(self, s: Session, **fields) -> Session:
        fields["updated_at"] = _now()
        cols = ", ".join(f"{k}=:{k}" for k in fields)
        with self.store.connect() as db:
            db.execute(f"UPDATE sessions SET {cols} WHERE id=:id", fields, id=s.id)
            return self.get(s.id, db)

    def finish(self, s: Session, status: str = "finished") -> Session:
        return self._set(s, status=status)

    # --- answers --------------------------------------------------------------------------
    def submit(self, s: Session, text: str) -> AnswerRecord:
        """Save the answer to the current question and move on. Grading is a separate step."""
        rec = self._advance(s, text, PENDING)
        if rec is None:
            raise UsageError(f"Session {s.id} has no open question.", "Start a new one with `interview start`.")
        return rec

    def skip(self, s: Session) -> Session:
        self._advance(s, "", SKIPPED)
        return self.get(s.id)

    def _advance(self, s: Session, text: str, status: str) -> AnswerRecord | None:
        """Save an answer (or a skip) to the question `s` is at and move the session on, in one
        transaction: a crash between the two cannot leave one without the other, and a second
        window or replica answering the same question cannot save to it twice."""
        item = self.current_item(s)
        if item is None:
            return None
        # the write lock first: the position read below stays true until the answer is saved
        with self.store.connect(lock=f"session {s.id}") as db:
            now = db.execute("SELECT position, status FROM sessions WHERE id=:id", id=s.id).first()
            if now is None or now["position"] != s.position or now["status"] != "active":
                raise ConflictError(f"Question {s.position + 1} of session {s.id} was already answered or "
                                    "skipped elsewhere (another window or process).",
                                    "Resume with `interview start --resume` to continue where it is now.")
            new_id = db.insert(INSERT_ANSWER, session_id=s.id, position=s.position, question_id=item.id,
                               question=item.question, answer=text, content_hash=content_hash(item.id, text),
                               status=status, source="session", created_at=_now(), follow_up=None,
                               **self._claim_on_insert(status))
            db.execute("UPDATE sessions SET position=:position, updated_at=:now WHERE id=:id",
                       position=s.position + 1, now=_now(), id=s.id)
            return self.answer(new_id, db)

    def record(self, question_id: str, question: str, text: str, source: str) -> AnswerRecord:
        """Save a session-less answer (one-shot grading, transcripts) before it is graded."""
        with self.store.connect() as db:
            new_id = db.insert(INSERT_ANSWER, session_id=None, position=None, question_id=question_id,
                               question=question, answer=text, content_hash=content_hash(question_id, text),
                               status=PENDING, source=source, created_at=_now(), follow_up=None,
                               **self._claim_on_insert(PENDING))
            return self.answer(new_id, db)

    def answer(self, answer_id: int, db=None) -> AnswerRecord:
        if db is None:
            with self.store.connect() as db:
                return self.answer(answer_id, db)
        row = db.execute("SELECT * FROM answers WHERE id=:id", id=answer_id).first()
        if row is None:
            raise NotFoundError(f"No answer {answer_id}.")
        return self._record(row)

    def answers(self, s: Session, follow_ups: bool = False) -> list[AnswerRecord]:
        """The session's answers in order; follow-up answers only when asked for (they are graded
        against one key point, and a summary counts questions, not follow-ups)."""
        with self.store.connect() as db:
            rows = db.execute("SELECT * FROM answers WHERE session_id=:id ORDER BY position, id", id=s.id)
            recs = [self._record(r) for r in rows]
        return recs if follow_ups else [a for a in recs if a.source != FOLLOW_UP]

    def submit_follow_up(self, session_id: int, text: str) -> AnswerRecord:
        """Save the answer to the session's open follow-up (meta `follow_up`, set by the face that
        asked it) and close it, in one transaction: the answer keeps the points it is graded
        against and the points asked so far, so any replica can grade it and go on."""
        with self.store.connect(lock=f"session {session_id}") as db:
            s = self.get(session_id, db)
            open_ = s.meta.pop("follow_up", None)
            if not open_:
                raise ConflictError("This follow-up was already answered or skipped elsewhere.")
            target = {"points": list(open_["points"]), "by": open_.get("by", "template"),
                      "asked": list(open_.get("asked", open_["points"]))}
            new_id = db.insert(INSERT_ANSWER, session_id=s.id, position=open_["position"],
                               question_id=open_["item_id"], question=open_["question"], answer=text,
                               content_hash=content_hash(open_["item_id"], text), status=PENDING, source=FOLLOW_UP,
                               created_at=_now(), follow_up=json.dumps(target), **self._claim_on_insert(PENDING))
            db.execute("UPDATE sessions SET meta=:meta WHERE id=:id", meta=json.dumps(s.meta, ensure_ascii=False),
                       id=s.id)
            return self.answer(new_id, db)

    def ungraded(self, s: Session) -> list[AnswerRecord]:
        """Answers still waiting for a grade, answers to follow-ups included."""
        return [a for a in self.answers(s, follow_ups=True) if a.status in (PENDING, ERROR)]

    def stored_grades(self, question_id: str, text: str, version: str) -> list[dict]:
        """The grades kept for the same answer to the same question by grading version `version`,
        newest first (the service's cache: it checks what else must match)."""
        with self.store.connect() as db:
            rows = db.execute("SELECT grade FROM answers WHERE content_hash=:hash AND status=:status "
                              "AND grading_version=:version ORDER BY id DESC",
                              hash=content_hash(question_id, text), status=GRADED, version=version).all()
        return [json.loads(r["grade"]) for r in rows]

    # --- claims (replicas) ----------------------------------------------------------------
    def _claim_on_insert(self, status: str) -> dict:
        """A pending answer is saved already claimed by this replica (in the INSERT itself): no
        other replica's sweep can ever see it unclaimed."""
        mine = bool(self.replica) and status == PENDING
        return {"claimed_by": self.replica if mine else None, "claimed_at": _now() if mine else None}

    def claim(self, answer_id: int) -> bool:
        """Take (or renew) this replica's claim on an ungraded answer: one UPDATE checked by its
        rowcount, so of two replicas racing for it exactly one wins. It wins when nobody holds it,
        when it holds it already, or when the holder's lease ran out. True without replicas."""
        if not self.replica:
            return True
        with self.store.connect() as db:
            cur = db.execute("UPDATE answers SET claimed_by=:me, claimed_at=:now WHERE id=:id "
                             "AND status IN ('pending', 'error') "
                             "AND (claimed_by IS NULL OR claimed_by=:me OR claimed_at < :expired)",
                             me=self.replica, now=_now(), expired=_ago(self.lease), id=answer_id)
            return cur.rowcount == 1

    def orphans(self, channel: str, limit: int = 100) -> list[AnswerRecord]:
        """Pending answers of active `channel` sessions that no live replica is grading: never
        claimed (saved by a process without replicas, or before claims existed), or claimed by a
        replica whose lease expired. Oldest first: what the sweep grades."""
        with self.store.connect() as db:
            rows = db.execute("SELECT a.* FROM answers a JOIN sessions s ON s.id = a.session_id "
                              "WHERE a.status = :pending AND a.source IN ('session', 'follow-up') AND s.channel = :channel "
                              "AND s.status = 'active' AND (a.claimed_at IS NULL OR a.claimed_at < :expired) "
                              "ORDER BY a.id LIMIT :limit",
                              pending=PENDING, channel=channel, expired=_ago(self.lease), limit=limit)
            return [self._record(r) for r in rows]

    def save_grade(self, answer_id: int, grade: dict, *, overall: float, model: str, version: str) -> bool:
        """Keep a grading's result; with replicas only while this replica still holds the claim
        (False when not: our lease ran out mid-call and another replica took the answer over)."""
        return self._mark(answer_id, status=GRADED, grade=json.dumps(grade, ensure_ascii=False), overall=overall,
                          model=model, error=None, graded_at=_now(), grading_version=version)

    def save_error(self, answer_id: int, error: str) -> bool:
        """Grading failed: the answer stays saved, marked `error` (graded again on resume or retry)."""
        return self._mark(answer_id, status=ERROR, error=error)

    def _mark(self, answer_id: int, **fields) -> bool:
        """Write a grading's outcome; with replicas only while this replica still holds the claim
        (the claim is released: an `error` answer may be retried by any replica). False when not."""
        guard = ""
        if self.replica:
            fields = {**fields, "claimed_by": None, "claimed_at": None}
            guard = " AND claimed_by=:me AND status IN ('pending', 'error')"
        cols = ", ".join(f"{k}=:{k}" for k in fields)
        with self.store.connect() as db:
            cur = db.execute(f"UPDATE answers SET {cols} WHERE id=:id{guard}", fields, id=answer_id, me=self.replica)
            return cur.rowcount == 1

    def summary(self, s: Session) -> dict:
        recs = self.answers(s)
        graded = [a for a in recs if a.status == GRADED and a.grade]
        scores = [a.grade.overall for a in graded]
        return {
            "session_id": s.id,
            "questions": len(s.question_ids),
            "answered": sum(a.status != SKIPPED for a in recs),
            "skipped": sum(a.status == SKIPPED for a in recs),
            "graded": len(graded),
            "ungraded": sum(a.status in (PENDING, ERROR) for a in recs),
            "mean": round(sum(scores) / len(scores), 1) if scores else None,
            "items": [{"question_id": a.question_id, "question": a.question, "status": a.status,
                       "overall": a.grade.overall if a.grade else None,
                       "missing": (a.grade.feedback.get("missing", [])[:1] if a.grade else [])} for a in recs],
        }
