"""Slack-independent glue over the application layer (bot.service): command parsing, event
de-duplication, and the numbers behind the App Home. Nothing here imports slack_bolt or slack_sdk;
grading, warm-ups, locking and sessions are the service's, shared with the other faces."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from bot.errors import InterviewError, UsageError
from bot.service import InterviewService
from bot.sessions import GRADED, Session

SLACK = "slack"  # the engine's `channel` for sessions started from Slack
DEFAULT_COUNT, MAX_COUNT = 5, 20
WORDS = ("skip", "hint", "stop", "again", "retry")
EVENTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_events (
    event_id TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
"""
EVENT_TTL = timedelta(days=3)  # Slack retries within minutes; keep a margin, then forget
REMINDERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_reminders (
    user_id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL,
    last_sent TEXT
);
"""
REMIND_EVERY = timedelta(days=7)  # the weekly reminder: at most one DM a week, only when items are due
_REMINDABLE = "enabled=1 AND (last_sent IS NULL OR last_sent <= :cutoff)"  # on, and last sent a week ago or never

USAGE = ("*Usage:* `/interview [topic] [count]` starts a mock interview here, e.g. `/interview cnn 3`.\n"
         "`/interview review [count]` asks the questions due for review (your weak answers come back on a "
         "spaced schedule); `/interview remind on|off` turns the weekly reminder in our DM on or off.\n"
         "`/interview score <file link>` scores a transcript you shared in Slack; or send me the file "
         "in a direct message with the word `score`.\n"
         "In the interview's thread: answer, or write `skip`, `hint`, `stop`, `again`, `retry`.")
DM_USAGE = ("*Here in our DM:* `start [topic] [count]` starts a mock interview, e.g. `start cnn 3`; "
            "send a transcript file with the word `score` to have it scored.\n"
            "Answer each question in its thread (or just here); words: `skip`, `hint`, `stop`, `again`, `retry`.\n"
            "In a channel: `/interview [topic] [count]`.")


@dataclass
class Command:
    kind: str  # start | review | remind | score | help
    topic: str | None = None
    count: int = DEFAULT_COUNT
    file_id: str | None = None
    on: bool | None = None  # remind on|off


FILE_ID_RE = re.compile(r"\bF[A-Z0-9]{6,}\b")


def parse_command(text: str) -> Command:
    """`/interview [topic] [count]`, `/interview score [file link or id]`, `/interview help`."""
    words = (text or "").split()
    if words and words[0].lower() in ("help", "-h", "--help"):
        return Command("help")
    if words and words[0].lower() == "score":
        m = FILE_ID_RE.search(" ".join(words[1:]))
        return Command("score", file_id=m.group(0) if m else None)
    if words and words[0].lower() == "remind":
        choice = " ".join(words[1:]).lower()
        if choice not in ("on", "off"):
            raise UsageError("`/interview remind` takes `on` or `off`.",
                             "`/interview remind on` sends a weekly DM when questions are due for review.")
        return Command("remind", on=choice == "on")
    kind = "start"
    if words and words[0].lower() in ("start", "review"):
        kind = "review" if words[0].lower() == "review" else "start"
        words = words[1:]
    count = str(DEFAULT_COUNT)
    if words and words[-1].isdecimal():  # not isdigit(): int() refuses its `²`
        count = words.pop()
    if len(count) > 4 or not 1 <= int(count) <= MAX_COUNT:  # int() refuses 4300 digits and more
        raise UsageError(f"{count[:8]} questions is out of range.", f"Ask for 1 to {MAX_COUNT} questions.")
    return Command(kind, topic=" ".join(words) or None, count=int(count))


def clean_text(text: str) -> str:
    """Message text as the user typed it: Slack escapes &, <, > and prefixes @-mentions of the bot."""
    text = re.sub(r"^(\s*<@[A-Z0-9]+>)+", "", text or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def word_of(text: str) -> str | None:
    w = text.strip().lower().strip(".!?/` ")
    return w if w in WORDS else None


class EventLog:
    """Event ids already handled, in the engine's database: survives a restart, so a delivery
    that Slack retries while the bot was down (or that reaches another replica) is handled once."""

    def __init__(self, store):
        self.store = store
        # under a lock: two replicas starting at once would both try to create the table
        with store.connect(lock="slack schema") as db:
            db.script(EVENTS_SCHEMA)
            cutoff = (datetime.now(timezone.utc) - EVENT_TTL).isoformat(timespec="seconds")
            db.execute("DELETE FROM slack_events WHERE seen_at < :cutoff", cutoff=cutoff)

    def first_time(self, event_id: str) -> bool:
        """Atomically claim the id; False when it was seen before (by this or an earlier process)."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.store.connect() as db:
            claimed = db.execute("INSERT INTO slack_events(event_id, seen_at) VALUES (:event_id, :now) "
                                 "ON CONFLICT DO NOTHING RETURNING event_id", event_id=event_id, now=now).first()
            return claimed is not None


class Reminders:
    """Who asked for the weekly review reminder (`/interview remind on|off`), and when it was last
    sent; in the engine's database, so a restart neither forgets nor repeats one."""

    def __init__(self, store):
        self.store = store
        with store.connect(lock="slack schema") as db:
            db.script(REMINDERS_SCHEMA)

    def set(self, user: str, enabled: bool) -> None:
        with self.store.connect() as db:
            db.execute("INSERT INTO slack_reminders(user_id, enabled) VALUES (:user, :enabled) "
                       "ON CONFLICT(user_id) DO UPDATE SET enabled=excluded.enabled", user=user, enabled=int(enabled))

    def enabled(self, user: str) -> bool:
        with self.store.connect() as db:
            row = db.execute("SELECT enabled FROM slack_reminders WHERE user_id=:user", user=user).first()
        return bool(row and row["enabled"])

    def candidates(self, now: datetime) -> list[str]:
        """Users with the reminder on whose last one is a week old or more."""
        cutoff = (now - REMIND_EVERY).isoformat(timespec="seconds")
        with self.store.connect() as db:
            return [r["user_id"] for r in db.execute(
                f"SELECT user_id FROM slack_reminders WHERE {_REMINDABLE}", cutoff=cutoff)]

    def claim(self, user: str, now: datetime) -> bool:
        """Take the right to send this week's reminder (one statement: two replicas never both win)."""
        cutoff = (now - REMIND_EVERY).isoformat(timespec="seconds")
        with self.store.connect() as db:
            cur = db.execute(f"UPDATE slack_reminders SET last_sent=:now WHERE user_id=:user AND {_REMINDABLE}",
                             now=now.isoformat(timespec="seconds"), user=user, cutoff=cutoff)
            return cur.rowcount == 1


class InterviewCore:
    """What the listeners share: the application service, the event log, the transcript index."""

    def __init__(self, service: InterviewService, index_factory: Callable[[], object] | None = None,
                 follow_ups: int = 1):
        self.service = service
        self.engine = service.engine  # read-only queries (sessions, answers, items)
        self.events = EventLog(service.engine.store)
        self.reminders = Reminders(service.engine.store)
        self.follow_ups = follow_ups  # per answer, in the thread (INTERVIEW_FOLLOW_UPS)
        self._index_factory = index_factory
        self._index = None

    def index(self):
        if self._index is None:
            if self._index_factory is None:
                raise InterviewError("Transcript scoring is not set up on this bot.",
                                     "Start the bot with `interview slack`, which opens the question index.")
            self._index = self._index_factory()
        return self._index

    def session_of_thread(self, thread_ts: str | None) -> Session | None:
        return self.engine.find_by_meta("thread_ts", thread_ts) if thread_ts else None

    def active_in_channel(self, channel: str, owner: str) -> Session | None:
        """The open session of a DM, for answers written outside its thread."""
        s = self.engine.find_by_meta("channel", channel)
        return s if s and s.status == "active" and s.owner == owner else None

    def home_stats(self, owner: str, limit: int = 10) -> dict:
        """The App Home numbers: recent sessions, mean per session over time, weakest tags."""
        sessions = self.engine.list_sessions(owner, limit=200)
        rows, trend, all_scores = [], [], []
        by_tag: dict[str, list[float]] = defaultdict(list)
        for s in sessions:
            summary = self.engine.summary(s)
            for a in self.engine.answers(s):
                if a.status == GRADED and a.grade:
                    all_scores.append(a.grade.overall)
                    item = self.engine.items.get(a.question_id)
                    for tag in (item.tags if item else []):
                        by_tag[tag].append(a.grade.overall)
            date = s.created_at[:10]
            if summary["mean"] is not None:
                trend.append((date, summary["mean"]))
            if len(rows) < limit:
                rows.append({"id": s.id, "date": date, "topic": s.topic, "status": s.status,
                             "mean": summary["mean"], "answered": summary["answered"],
                             "questions": summary["questions"]})
        weakest = sorted(((t, round(sum(v) / len(v), 1), len(v)) for t, v in by_tag.items()),
                         key=lambda x: (x[1], -x[2]))[:3]
        due = self.service.coach.due(owner)
        upcoming = self.service.coach.upcoming(owner, limit=1)
        return {
            "due": len(due),
            "next_due": upcoming[0]["due"][:16].replace("T", " ") if upcoming and not due else None,
            "reminder": self.reminders.enabled(owner),
            "sessions": rows,
            "trend": list(reversed(trend))[-20:],  # oldest first
            "average": round(sum(all_scores) / len(all_scores), 1) if all_scores else None,
            "graded": len(all_scores),
            "weakest": weakest,
        }
