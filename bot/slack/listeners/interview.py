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

# grade_and_reply's answer when another replica holds the answer: it posts the grade and moves the
# thread on, so this one must do neither.
LOST = object()
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
    """The next question in the thread, or the summary when none is left."""
    s = core.service.session(s.id)
    item = core.service.current_item(s)
    if item is None:
        finish(core, client, s, "finished")
        return
    n = s.position + 1
    core.turns.hand_over(s.id)
    post(client, s.meta["channel"], kit.question_blocks(item, n, len(s.question_ids), s.owner),
         f"Question {n}: {item.question}", s.meta["thread_ts"])
    core.service.prepare(item)


def finish(core: InterviewCore, client, s: Session, status: str) -> None:
    if s.status == "active":
        s = core.service.finish(s, status)
    post(client, s.meta["channel"], kit.summary_blocks(core.service.summary(s), s.status),
         "Interview summary", s.meta["thread_ts"])
    publish_home(core, client, s.owner)  # the Home tab shows progress: refresh it while we know it changed


def publish_home(core: InterviewCore, client, user: str) -> None:
    try:
        client.views_publish(user_id=user, view=kit.home_view(core.home_stats(user)))
    except Exception as e:  # noqa: BLE001 - a stale Home tab must never break an interview
        log.warning("Could not publish the App Home: %s", type(e).__name__)


def grade_and_reply(core: InterviewCore, client, s: Session, rec, grade_fn=None, *, follow_up: bool = False):
    """Show "grading…" at once, grade (slow), then replace it with the grade and the reference.
    Returns the grade, None when grading failed (the answer stays saved), or LOST when another
    replica grades it (claimed first: a replica that would lose posts no "grading…" at all)."""
    if not core.engine.claim(rec.id):
        return LOST
    ch, ts = s.meta["channel"], s.meta["thread_ts"]
    number, total = (rec.position or 0) + 1, len(s.question_ids)
    placeholder = client.chat_postMessage(channel=ch, thread_ts=ts, text=kit.grading_text(number))

    def failed(message: str, hint: str | None) -> None:  # the engine kept the answer, marked `error`
        replace(client, ch, placeholder["ts"], kit.error_blocks(message, hint, SAVED), message, ts)

    try:
        grade = (grade_fn or core.service.grade)(rec)
    except ConflictError:  # our lease ran out mid-grading and another replica took the answer over
        replace(client, ch, placeholder["ts"], kit.sections("(graded in another message)"), "Graded elsewhere.", ts)
        return LOST
    except Exception as e:  # noqa: BLE001 - a bug too: tell the user, keep the traceback in the log
        shown = user_facing(e)
        return failed(shown.message, shown.hint)
    replace(client, ch, placeholder["ts"], kit.grade_blocks(grade, number, total, follow_up=follow_up),
            kit.grade_fallback(grade, number), ts)
    if not follow_up and (ref := kit.reference_blocks(grade)):
        post(client, ch, ref, "Reference answer", ts)
    return grade


def ask_follow_up(core: InterviewCore, client, s: Session, rec, grade, asked: list[int]) -> bool:
    """After a graded answer, one question on the most important point it missed, in the thread;
    kept in the session (meta `follow_up`) until answered or skipped, so a restart keeps it.
    False when there is nothing to ask (or no more follow-ups for this answer)."""
    if grade is None or grade is LOST or len(asked) >= core.follow_ups:
        return False
    item = core.engine.items.get(rec.question_id)
    try:
        f = core.service.follow_up(item, grade, exclude=set(asked)) if item else None
    except InterviewError:
        return False  # a follow-up is a bonus: go on with the next question
    if f is None:
        return False
    number = (rec.position or 0) + 1
    core.engine.update_meta(s.id, follow_up={"position": rec.position, "item_id": item.id, "question": f.question,
                                             "points": list(f.points), "by": f.by, "asked": asked + list(f.points)})
    core.turns.hand_over(s.id)
    post(client, s.meta["channel"], kit.follow_up_blocks(f.question, number, s.owner),
         f"Follow-up: {f.question}", s.meta["thread_ts"])
    return True


def answer_follow_up(core: InterviewCore, client, s: Session, text: str) -> None:
    """The owner's reply while a follow-up is open: saved with what it answers (the follow-up
    closed in the same transaction), then graded and the thread moved on."""
    try:
        rec = core.engine.submit_follow_up(s.id, text)
    except ConflictError:  # answered or skipped by another delivery of the same message meanwhile
        return
    follow_up_then_go_on(core, client, core.service.session(s.id), rec)


def follow_up_then_go_on(core: InterviewCore, client, s: Session, rec) -> None:
    """Grade a saved follow-up answer against its points; then the next follow-up on the same
    answer (if more are allowed) or the next question. Nothing more when another replica has it."""
    grade = grade_and_reply(core, client, s, rec, follow_up=True)
    if grade is LOST:
        return
    main = next((a for a in core.engine.answers(s) if a.position == rec.position), None)
    asked = list((rec.follow_up or {}).get("asked", []))
    if main is None or not ask_follow_up(core, client, s, main, grade, asked):
        post_next(core, client, s)


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
        rec = core.engine.submit_follow_up(s.id, text) if s.meta.get("follow_up") else core.service.submit(s, text)
        saved = {SAVED_KEY: (rec.id, token)}
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
                rec = core.engine.answer(answer_id)
                (follow_up_then_go_on if rec.source == FOLLOW_UP else grade_then_go_on)(
                    core, client, core.service.session(s.id), rec)
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
            # LOST: another replica posts that one
            grade_and_reply(core, client, s, rec, follow_up=rec.source == FOLLOW_UP)
        if todo and service.current_item(s) is None:  # over: show the summary with the new grades
            finish(core, client, service.session(s.id), "finished")
        return
    if s.status != "active":
        say_over(client, s)
    elif word == "stop":
        finish(core, client, core.engine.update_meta(s.id, follow_up=None), "stopped")
    elif s.meta.get("follow_up"):
        post(client, ch, kit.sections("A follow-up has no hint: answer it as you would in an interview, "
                                      "or write `skip`."), "No hint for a follow-up.", ts)
    else:
        post(client, ch, kit.hint_blocks(service.current_item(s)), "Hint", ts)


def on_answer(core: InterviewCore, client, s: Session, word: str | None, text: str) -> None:
    """An answer or `skip`, under the session's turn: to the open follow-up, else to the question."""
    if s.status != "active":
        say_over(client, s)
    elif s.meta.get("follow_up"):
        if word == "skip" or not text.strip():
            post_next(core, client, core.engine.update_meta(s.id, follow_up=None))
        else:
            answer_follow_up(core, client, s, text)
    elif word == "skip":
        post_next(core, client, core.service.skip(s))
    elif text.strip():
        rec = core.service.submit(s, text)  # saved before grading: a crash or restart loses nothing
        grade_then_go_on(core, client, s, rec)


def say_over(client, s: Session) -> None:
    post(client, s.meta["channel"], kit.sections("This interview is over. Write `again` for a new round."),
         "Interview over.", s.meta["thread_ts"])


def grade_then_go_on(core: InterviewCore, client, s: Session, rec) -> None:
    """Grade a saved answer in its thread, then a follow-up or the next question; nothing more when
    another replica has it (LOST): that one grades it and moves the thread on."""
    grade = grade_and_reply(core, client, s, rec)
    if grade is not LOST and not ask_follow_up(core, client, s, rec, grade, []):
        post_next(core, client, s)


def sweep(core: InterviewCore, client, run: Callable | None = None) -> int:
    """Grade the answers no live process is grading, and continue their threads: at startup (the
    bot was stopped mid-grade) and then periodically in every replica (another replica died with
    answers claimed). Each answer is claimed first, so of several replicas sweeping at once one
    grades it. `run(fn, *args)` runs each one's grading (the listeners' executor: a dead replica's
    answers are graded side by side, up to the model's slots, not one after another; measured in
    bench/load.py); in this thread when None. Returns how many this replica claimed."""
    claimed = 0
    for rec in core.engine.orphans(SLACK):
        if not core.engine.claim(rec.id):
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
        if rec.source == FOLLOW_UP:  # graded against the points it was asked about
            follow_up_then_go_on(core, client, s, rec)
        elif grade_and_reply(core, client, s, rec) is not LOST:
            post_next(core, client, s)



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
