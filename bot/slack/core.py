"""Slack-independent glue over the application layer (bot.service): command parsing, event
de-duplication, turns across replicas, what a user may read of an error, and the numbers behind
the App Home. Nothing here imports slack_bolt or slack_sdk; grading, warm-ups, locking and
sessions are the service's, shared with the other faces."""
from __future__ import annotations

import logging
import re
import secrets
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from bot.config import ENV_VARS, Settings
from bot.errors import ConfigError, InterviewError, LLMError, ModelError, StoreError, UsageError
from bot.service import LEASE_S, InterviewService, Session

log = logging.getLogger(__name__)

SLACK = "slack"  # the `channel` of sessions started from Slack
DEFAULT_COUNT, MAX_COUNT = 5, 20
WORDS = ("skip", "hint", "stop", "again", "retry")
EVENT_TTL = timedelta(days=3)  # Slack retries within minutes; keep a margin, then forget
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


# What a Slack user reads when the bot's own machinery fails. These errors name endpoint and
# database hosts, URLs, server paths and the provider's raw reply, for whoever runs the bot: the
# log gets them, the channel does not.
AGAIN = "Try again in a few minutes; if it keeps failing, tell whoever runs this bot (the details are in its log)."
ADMIN = "Tell whoever runs this bot; the details are in its log."
MACHINERY: tuple[tuple[type[InterviewError], str, str], ...] = (
    (LLMError, "The grading model did not answer.", AGAIN),
    (ModelError, "The grading model could not be loaded.", ADMIN),
    (StoreError, "The bot's database is not available right now.", AGAIN),
    (ConfigError, "The bot is not set up correctly.", ADMIN),
)


def user_facing(e: BaseException) -> InterviewError:
    """`e` as it may be posted to Slack: every error a Slack user sees goes through here. A failure
    of the machinery becomes what happened and what to do, of the same class (the transcript
    scorer still tells a dead endpoint from one bad answer), and the original goes to the log; a
    bug is logged with its traceback; any other InterviewError is about the user's input and is
    shown as it is."""
    for cls, message, hint in MACHINERY:
        if isinstance(e, cls):
            log.warning("Told a Slack user %r instead of: %s", message, e)
            return cls(message, hint)
    if isinstance(e, InterviewError):
        return e
    log.error("Slack handler failed", exc_info=e)
    return InterviewError("Something went wrong on my side; the details are in the bot's log.")


def capped(kept: int, found: int, what: str, setting: str) -> str:
    """The reply's note when a limit left some of a request out, naming the setting that sets it."""
    return f"✂️ Scored the first {kept} of {found} {what}; the limit is {ENV_VARS[setting][0]}."


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
    """Event ids already handled, in the history database: survives a restart, so a delivery
    that Slack retries while the bot was down (or that reaches another replica) is handled once.
    Its table, like every table, is made by bot.schema's migrations when the store opens."""

    def __init__(self, store):
        self.store = store
        with store.connect() as db:
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
    sent; in the history database, so a restart neither forgets nor repeats one."""

    def __init__(self, store):
        self.store = store

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


class Turns:
    """Which message of a session is being handled, in the database, so that every replica agrees:
    an answer (or a skip) takes the session's turn before it is saved, and hands it over just
    before the next question (or follow-up) is posted, so that an answer to that one always finds
    it free. A message that finds the turn taken is not saved: it was written before the owner
    saw the question it would answer. A turn older than `lease` seconds belongs to a replica
    that died, and may be taken over."""

    # the turn this thread holds (`held`), so that whoever posts the next question hands it over
    _holding: ContextVar[tuple[int, str] | None] = ContextVar("slack_turn", default=None)

    def __init__(self, store, lease: float = LEASE_S):
        self.store = store
        self.lease = lease

    def take(self, session_id: int) -> str | None:
        """The turn's token, or None when another message holds it: one statement, so of two
        replicas taking it at once exactly one gets it."""
        token = secrets.token_hex(8)
        now = datetime.now(timezone.utc)
        with self.store.connect() as db:
            won = db.execute("INSERT INTO slack_turns(session_id, holder, taken_at) VALUES (:id, :token, :now) "
                             "ON CONFLICT(session_id) DO UPDATE SET holder=excluded.holder, taken_at=excluded.taken_at "
                             "WHERE slack_turns.taken_at < :expired RETURNING holder",
                             id=session_id, token=token, now=now.isoformat(timespec="seconds"),
                             expired=(now - timedelta(seconds=self.lease)).isoformat(timespec="seconds")).first()
        return token if won else None

    def give_back(self, session_id: int, token: str) -> None:
        with self.store.connect() as db:
            db.execute("DELETE FROM slack_turns WHERE session_id=:id AND holder=:token", id=session_id, token=token)

    @contextmanager
    def held(self, session_id: int, token: str | None = None) -> Iterator[str | None]:
        """The turn for the block (`token`: taken already, before the ack), unless handed over
        earlier; yields None when another message holds it."""
        token = token or self.take(session_id)
        mark = self._holding.set((session_id, token) if token else None)
        try:
            yield token
        finally:
            self.hand_over(session_id)
            self._holding.reset(mark)

    def hand_over(self, session_id: int) -> None:
        """Give back the turn this thread holds on the session, if it holds one."""
        holding = self._holding.get()
        if holding is not None and holding[0] == session_id:
            self._holding.set(None)
            self.give_back(*holding)


class InterviewCore:
    """What the listeners share: the application service, the event log, the turns, the
    transcript index, and the limits of one request (INTERVIEW_SLACK_MAX_FILES, _MAX_PAIRS)."""

    def __init__(self, service: InterviewService, index_factory: Callable[[], object] | None = None,
                 follow_ups: int = 1, *, max_files: int = Settings.slack_max_files,
                 max_pairs: int = Settings.slack_max_pairs):
        self.service = service
        self.events = EventLog(service.store)
        self.reminders = Reminders(service.store)
        self.turns = Turns(service.store, service.lease)
        service.follow_ups = follow_ups  # per answer, in the thread (INTERVIEW_FOLLOW_UPS)
        self.max_files, self.max_pairs = max_files, max_pairs
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
        return self.service.session_by_thread(thread_ts) if thread_ts else None

    def active_in_channel(self, channel: str, owner: str) -> Session | None:
        """The open session of a DM, for answers written outside its thread."""
        s = self.service.session_by_meta("channel", channel)
        return s if s and s.status == "active" and s.owner == owner else None

    def home_stats(self, owner: str, limit: int = 10) -> dict:
        """The App Home numbers (the coach's, bot.coach.Coach.home_stats) and the reminder's state."""
        return {**self.service.home_stats(owner, limit), "reminder": self.reminders.enabled(owner)}
