"""The interview conversation in Slack, shared by the command, message and Home listeners:
post a question, take the owner's answer in the thread, grade it visibly, move on."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable

from slack_sdk.errors import SlackApiError

from bot.errors import ConflictError, InterviewError
from bot.service import FOLLOW_UP, Session
from bot.slack import blocks as kit
from bot.slack.core import SLACK, InterviewCore, clean_text, user_facing, word_of

log = logging.getLogger(__name__)

# bolt context keys set before the ack (messages.py): the answer saved and the turn it holds, or
# that another message of the session held the turn.
SAVED_KEY, BUSY_KEY = "interview_saved_answer", "interview_turn_busy"
# message subtypes a person typed; edits, deletions, joins, bot posts ... are not answers
HANDLED_SUBTYPES = (None, "file_share", "thread_broadcast")


def typed_by_person(event: dict) -> bool:
    """A message event a person wrote (not a bot, an edit, a deletion, a join ...)."""
    return not event.get("bot_id") and event.get("subtype") in HANDLED_SUBTYPES and bool(event.get("user"))
SAVED = "Your answer is saved; write `retry` in this thread to grade it again."
NOT_YOURS = ("This is <@{owner}>'s mock interview, so only their answers are graded in this thread. "
             "Start your own with `/interview`.")
BUSY = ("I was still on your previous message in this interview, so I did not take this one. "
        "Send it again once the next question is up.")


@contextmanager
def reporting(say: Callable[[list[dict], str], None]):
    """Turn any failure of a handler into a message to the user (a traceback reaches only the log)."""
    try:
        yield
    except SlackApiError as e:
        # The error code only: the response object can echo request arguments.
        code = e.response.get("error") if e.response is not None else "unknown"
        log.warning("Slack API call failed: %s", code)
        hint = {"not_in_channel": "Invite me to the channel first (`/invite @Interview Bot`), or DM me.",
                "channel_not_found": "Invite me to the channel first, or DM me.",
                "missing_scope": "Reinstall the app from slack/manifest.yml: a scope is missing."}.get(code)
        _try(say, kit.error_blocks(f"Slack refused a request ({code}).", hint), f"Slack error: {code}")
    except Exception as e:  # noqa: BLE001 - a bug must not kill the listener thread silently
        shown = user_facing(e)
        _try(say, kit.error_blocks(shown.message, shown.hint), shown.message)


def _try(say, blocks, text) -> None:
    try:
        say(blocks, text)
    except Exception as e:  # noqa: BLE001 - the error report itself failed (e.g. no access): log only
        log.warning("Could not report an error to the user: %s", type(e).__name__)


def post(client, channel: str, blocks: list[dict], text: str, thread_ts: str | None = None) -> dict:
    """Post blocks as one or more messages (Slack's 50-block limit); returns the first response."""
    first = None
    for part in kit.chunk(blocks):
        r = client.chat_postMessage(channel=channel, thread_ts=thread_ts, blocks=part, text=kit.fallback(text))
        first = first or r
    return first


def replace(client, channel: str, ts: str, blocks: list[dict], text: str, thread_ts: str | None) -> None:
    """Turn a placeholder ("grading…") into the result; overflow goes into follow-up messages."""
    parts = kit.chunk(blocks)
    client.chat_update(channel=channel, ts=ts, blocks=parts[0], text=kit.fallback(text))
    for part in parts[1:]:
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, blocks=part, text=kit.fallback(text))


def thread_sayer(client, s: Session):
    ch, ts = s.meta["channel"], s.meta["thread_ts"]
    return lambda b, t: post(client, ch, b, t, ts)


# --- the flow ---------------------------------------------------------------------------------

def start_session(core: InterviewCore, client, *, user: str, channel: str, topic: str | None,
                  count: int, mode: str = "mix") -> Session:
    """Open a session whose thread is question 1's message. `channel` may be a user id: the
    app's DM with that user. The coach plans it from the person's history (`mix`: due items,
    then new ones from weak topics; `review`: only what is due)."""
    service = core.service
    service.validate_start(user, mode=mode, topic=topic, count=count)  # fails before anything is posted
    # The session is keyed by its thread, and a message's ts exists only once it is posted:
    # post a placeholder, open the session on its ts, then turn it into question 1.
    first = client.chat_postMessage(channel=channel, text=f"🎤 Starting a mock interview for <@{user}>…")
    channel_id, ts = first["channel"], first["ts"]
    s = service.start(user, mode=mode, topic=topic, count=count, channel=SLACK,
                      meta={"channel": channel_id, "thread_ts": ts})
    item = service.current_item(s)
    client.chat_update(channel=channel_id, ts=ts, blocks=kit.question_blocks(item, 1, len(s.question_ids), user),
                       text=kit.fallback(f"Question 1: {item.question}"))
    service.prepare(item)
    return s


def post_next(core: InterviewCore, client, s: Session) -> None:
    """What the session asks now in the thread (its next question, or the follow-up just opened),
    or the summary when nothing is left."""
    asked = core.service.asking(s)
    if asked is None:
        finish(core, client, core.service.session(s.id), "finished")
        return
    core.turns.hand_over(s.id)
    if asked.kind == FOLLOW_UP:
        post(client, s.meta["channel"], kit.follow_up_blocks(asked.text, asked.number, s.owner),
             f"Follow-up: {asked.text}", s.meta["thread_ts"])
        return
    post(client, s.meta["channel"], kit.question_blocks(asked.item, asked.number, asked.total, s.owner),
         f"Question {asked.number}: {asked.item.question}", s.meta["thread_ts"])
    core.service.prepare(asked.item)


def finish(core: InterviewCore, client, s: Session, status: str) -> None:
    if s.status == "active":
        s = core.service.stop(s) if status == "stopped" else core.service.finish(s, status)
    post(client, s.meta["channel"], kit.summary_blocks(core.service.summary(s), s.status),
         "Interview summary", s.meta["thread_ts"])
    publish_home(core, client, s.owner)  # the Home tab shows progress: refresh it while we know it changed


def publish_home(core: InterviewCore, client, user: str) -> None:
    try:
        client.views_publish(user_id=user, view=kit.home_view(core.home_stats(user)))
    except Exception as e:  # noqa: BLE001 - a stale Home tab must never break an interview
        log.warning("Could not publish the App Home: %s", type(e).__name__)


class _Shown:
    """A saved answer's grading as the thread shows it: "grading…" at once, replaced by the grade
    (or by why grading failed), then the reference under a question's grade."""

    def __init__(self, client, s: Session, rec):
        self.client, self.rec = client, rec
        self.ch, self.ts = s.meta["channel"], s.meta["thread_ts"]
        self.number, self.total = (rec.position or 0) + 1, len(s.question_ids)
        self.follow_up = rec.source == FOLLOW_UP
        self.placeholder = client.chat_postMessage(channel=self.ch, thread_ts=self.ts,
                                                   text=kit.grading_text(self.number))["ts"]

    def _replace(self, blocks, text) -> None:
        replace(self.client, self.ch, self.placeholder, blocks, text, self.ts)

    def graded(self, grade) -> None:
        self._replace(kit.grade_blocks(grade, self.number, self.total, follow_up=self.follow_up),
                      kit.grade_fallback(grade, self.number))
        if not self.follow_up and (ref := kit.reference_blocks(grade)):
            post(self.client, self.ch, ref, "Reference answer", self.ts)

    def failed(self, e: BaseException) -> None:  # the answer stays saved, marked `error`
        shown = user_facing(e)
        self._replace(kit.error_blocks(shown.message, shown.hint, SAVED), shown.message)

    def lost(self) -> None:  # our lease ran out mid-grading and another replica took the answer over
        self._replace(kit.sections("(graded in another message)"), "Graded elsewhere.")


def go_on(core: InterviewCore, client, s: Session, rec) -> None:
    """Grade a saved answer visibly in its thread (bot.service.go_on), then post what the session
    asks next: the follow-up on what it missed, the next question, or the summary. Nothing when
    another replica has the answer (claimed first: a replica that would lose posts no
    "grading…" at all): that one grades it and moves the thread on."""
    if not core.service.claim(rec):
        return
    shown = _Shown(client, s, rec)
    try:
        turn = core.service.go_on(rec, graded=shown.graded)
    except ConflictError:
        shown.lost()
        return
    except Exception as e:  # noqa: BLE001 - a bug too: tell the user, keep the traceback in the log
        shown.failed(e)
    else:
        if turn.error is not None:  # the answer stays saved, marked `error`: `retry` grades it
            shown.failed(turn.error)
    post_next(core, client, s)


def grade_again(core: InterviewCore, client, s: Session, rec) -> None:
    """`retry`: grade a saved answer in its thread, without moving the thread on."""
    if not core.service.claim(rec):
        return
    shown = _Shown(client, s, rec)
    try:
        shown.graded(core.service.grade(rec))
    except ConflictError:
        shown.lost()
    except Exception as e:  # noqa: BLE001 - a bug too: tell the user, keep the traceback in the log
        shown.failed(e)


def save_answer_early(core: InterviewCore, event: dict) -> dict:
    """Save a plain answer in a session's thread while the request is still open (before the ack):
    to the question, or to the open follow-up, under the session's turn. Returns what to put in
    the lazy listener's context: SAVED_KEY (the answer's id, and the turn, which the lazy path
    holds until the next question is posted), BUSY_KEY when another message holds the turn,
    nothing for anything else (words, other people, DMs without a thread: the lazy path's)."""
    if not typed_by_person(event):
        return {}
    s = core.session_of_thread(event.get("thread_ts"))
    text = clean_text(event.get("text", ""))
    if s is None or s.owner != event["user"] or s.status != "active" or not text.strip() or word_of(text):
        return {}
    token = core.turns.take(s.id)
    if token is None:
        return {BUSY_KEY: True}
    saved = {}
    try:
        saved = {SAVED_KEY: (core.service.reply(s, text).id, token)}
    except InterviewError:  # e.g. the interview ended meanwhile: the lazy path reports it
        pass
    finally:
        if not saved:
            core.turns.give_back(s.id, token)
    return saved


def on_session_message(core: InterviewCore, client, s: Session, *, user: str, text: str,
                       saved: tuple[int, str] | None = None, busy: bool = False) -> None:
    """A message in a session's thread (or in its DM): an answer or one of the words. `saved`: the
    answer already saved from it before the ack, with the turn it holds (save_answer_early): only
    graded here; `busy`: another message held the turn then. An answer or `skip` takes the turn;
    when another message holds it, the owner is told and nothing is saved."""
    ch, ts = s.meta["channel"], s.meta["thread_ts"]
    if user != s.owner:
        client.chat_postEphemeral(channel=ch, user=user, thread_ts=ts, text=NOT_YOURS.format(owner=s.owner))
        return
    with core.service.turn(s.id), reporting(thread_sayer(client, s)):
        if saved is not None:
            answer_id, token = saved
            with core.turns.held(s.id, token):
                go_on(core, client, core.service.session(s.id), core.service.saved_answer(answer_id))
            return
        word = word_of(text)
        if word not in (None, "skip"):
            on_word(core, client, core.service.session(s.id), word)
            return
        if busy:
            client.chat_postEphemeral(channel=ch, user=user, thread_ts=ts, text=BUSY)
            return
        with core.turns.held(s.id) as token:
            if token is None:
                client.chat_postEphemeral(channel=ch, user=user, thread_ts=ts, text=BUSY)
                return
            # read under the turn: the message that held it before may have moved the session on
            on_answer(core, client, core.service.session(s.id), word, text)


def on_word(core: InterviewCore, client, s: Session, word: str) -> None:
    """`again`, `retry`, `stop`, `hint`: none answers the question, so none needs the turn."""
    service = core.service
    ch, ts = s.meta["channel"], s.meta["thread_ts"]
    if word == "again":
        if s.status == "active":
            finish(core, client, s, "stopped")
        start_session(core, client, user=s.owner, channel=ch, topic=s.topic, count=len(s.question_ids))
        return
    if word == "retry":
        todo = service.ungraded(s)
        if not todo:
            post(client, ch, kit.sections("Every answer in this interview is graded."), "Nothing to grade.", ts)
        for rec in todo:
            grade_again(core, client, s, rec)  # nothing when another replica holds it: that one posts it
        if todo and service.asking(s) is None:  # over: show the summary with the new grades
            finish(core, client, service.session(s.id), "finished")
        return
    if s.status != "active":
        say_over(client, s)
    elif word == "stop":
        finish(core, client, s, "stopped")
    elif s.meta.get("follow_up"):
        post(client, ch, kit.sections("A follow-up has no hint: answer it as you would in an interview, "
                                      "or write `skip`."), "No hint for a follow-up.", ts)
    else:
        post(client, ch, kit.hint_blocks(service.current_item(s)), "Hint", ts)


def on_answer(core: InterviewCore, client, s: Session, word: str | None, text: str) -> None:
    """An answer or `skip`, under the session's turn: to the open follow-up, else to the question
    (an empty reply to a follow-up skips it)."""
    if s.status != "active":
        say_over(client, s)
    elif word == "skip" or (s.meta.get("follow_up") and not text.strip()):
        post_next(core, client, core.service.pass_on(s))
    elif text.strip():
        try:
            rec = core.service.reply(s, text)  # saved before grading: a crash or restart loses nothing
        except ConflictError:  # answered or skipped by another delivery of the same message meanwhile
            return
        go_on(core, client, s, rec)


def say_over(client, s: Session) -> None:
    post(client, s.meta["channel"], kit.sections("This interview is over. Write `again` for a new round."),
         "Interview over.", s.meta["thread_ts"])


def sweep(core: InterviewCore, client, run: Callable | None = None) -> int:
    """Grade the answers no live process is grading, and continue their threads: at startup (the
    bot was stopped mid-grade) and then periodically in every replica (another replica died with
    answers claimed). Each answer is claimed first, so of several replicas sweeping at once one
    grades it. `run(fn, *args)` runs each one's grading (the listeners' executor: a dead replica's
    answers are graded side by side, up to the model's slots, not one after another; measured in
    bench/load.py); in this thread when None. Returns how many this replica claimed."""
    claimed = 0
    for rec in core.service.orphans(SLACK):
        if not core.service.claim(rec):
            continue  # another replica's sweep (or its live flow) took it first
        claimed += 1
        (run or (lambda fn, *a: fn(*a)))(_resume_one, core, client, rec)
    return claimed


def _resume_one(core: InterviewCore, client, rec) -> None:
    """Grade one orphan and move its thread on, holding the session's turn if it is free (the dead
    replica's ran out with its claim), so that a new answer waits for the next question; graded
    either way: the answer is saved."""
    s = core.service.session(rec.session_id)
    with core.service.turn(s.id), core.turns.held(s.id), reporting(thread_sayer(client, s)):
        go_on(core, client, s, rec)  # an answer to a follow-up: against the points it was asked about



def send_reminders(core: InterviewCore, client, now=None) -> list[str]:
    """The weekly DM to everyone who turned the reminder on and has questions due: at most one a
    week each, none when nothing is due. Returns the users reminded."""
    from datetime import datetime, timezone

    now = now or datetime.now(timezone.utc)
    sent = []
    for user in core.reminders.candidates(now):
        due = len(core.service.coach.due(user, now))
        if due and core.reminders.claim(user, now):
            try:
                post(client, user, kit.reminder_blocks(due), f"{due} question(s) due for review")
                sent.append(user)
            except Exception as e:  # noqa: BLE001 - one user's closed DM must not stop the others
                log.warning("Could not send a reminder: %s", type(e).__name__)
    return sent
