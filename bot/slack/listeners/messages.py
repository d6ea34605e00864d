"""Messages in channels the bot is in and in its DMs: answers in a session's thread, the thread
words, and in DMs also `start ...` and transcript files shared with the word "score"."""
from __future__ import annotations

from bot.errors import InterviewError
from bot.slack import blocks as kit
from bot.slack.core import DM_USAGE, InterviewCore, clean_text, parse_command
from bot.slack.listeners.files import SCORE_WORD, score_files
from bot.slack.listeners.interview import (BUSY_KEY, SAVED_KEY, finish, on_session_message, post, reporting,
                                           save_answer_early, start_session, typed_by_person)


def register(app, core: InterviewCore) -> None:
    def ack_message(ack):
        ack()

    def handle_message(event, client, context):
        if not typed_by_person(event):
            return
        user, channel = event["user"], event["channel"]
        text = clean_text(event.get("text", ""))
        thread_ts = event.get("thread_ts")
        is_dm = event.get("channel_type") == "im"

        if is_dm and event.get("files") and SCORE_WORD.search(text):
            score_files(core, client, event["files"], channel=channel, thread_ts=event["ts"])
            return
        s = core.session_of_thread(thread_ts)
        if s is None and is_dm and not thread_ts:
            if is_start(text):
                dm_command(core, client, user=user, channel=channel, text=text)
                return
            s = core.active_in_channel(channel, user)  # in a DM an answer may skip the thread
        if s is not None:
            on_session_message(core, client, s, user=user, text=text, saved=context.get(SAVED_KEY),
                               busy=context.get(BUSY_KEY, False))
        elif is_dm and not thread_ts:
            dm_command(core, client, user=user, channel=channel, text=text)
        # Any other message (ordinary channel talk, unrelated threads) is none of our business.

    app.event("message")(ack=ack_message, lazy=[handle_message])


def is_start(text: str) -> bool:
    """`start [topic] [count]`: one short line, so an answer that begins "Start with…" stays an answer."""
    words = text.split()
    return bool(words) and words[0].lower() in ("start", "interview") and len(words) <= 5 and "\n" not in text


def dm_command(core: InterviewCore, client, *, user: str, channel: str, text: str) -> None:
    def say(blocks, t):
        post(client, channel, blocks, t)

    with reporting(say):
        if is_start(text):
            cmd = parse_command(" ".join(text.split()[1:]))
            core.service.validate_start(user, topic=cmd.topic, count=cmd.count)  # valid before anything ends
            if (old := core.active_in_channel(channel, user)) is not None:  # one open interview per DM
                with core.service.turn(old.id):
                    finish(core, client, core.service.session(old.id), "stopped")
            start_session(core, client, user=user, channel=channel, topic=cmd.topic, count=cmd.count)
        elif text.lower().startswith("score"):
            raise InterviewError("Attach the transcript file to the message that says `score`.")
        else:
            say(kit.sections(DM_USAGE), "How to use me")


def save_answers_early(core: InterviewCore):
    """Global middleware (after the de-duplication): a plain answer in a session's thread is saved
    while the request is still open, before the ack. Once acked Slack never sends it again, so a
    replica killed between the ack and the lazy handler would otherwise lose it; saved, it is
    pending under this replica's claim and another replica's sweep grades it. Here, not in the ack
    listener: bolt starts lazy listeners alongside the ack listener, but after the middleware, and
    hands them a copy of the context (SAVED_KEY: the answer's id and its turn; BUSY_KEY)."""

    def middleware(body, context, next):
        event = body.get("event") or {}
        if body.get("type") == "event_callback" and event.get("type") == "message":
            context.update(save_answer_early(core, event))
        return next()

    return middleware
