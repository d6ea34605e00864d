"""`/interview [topic] [count]`, `/interview review [count]`, `/interview remind on|off`,
`/interview score <file link>`, `/interview help`.

The ack answers within Slack's 3 seconds (usage and parse errors go straight into it); opening
the session and posting question 1 happen in the lazy listener."""
from __future__ import annotations

from bot.errors import InterviewError
from bot.slack import blocks as kit
from bot.slack.core import USAGE, InterviewCore, parse_command, user_facing
from bot.slack.listeners.files import score_transcript, shared_file
from bot.slack.listeners.interview import reporting, start_session

SCORE_HOW = ("Send me the transcript file in a direct message with the word `score`, "
             "or pass the file's link: `/interview score <link>`.")


def register(app, core: InterviewCore) -> None:
    def ack_command(ack, command):
        try:
            cmd = parse_command(command.get("text", ""))
        except InterviewError as e:
            shown = user_facing(e)
            ack(text=f"{shown.message} {shown.hint or ''}".strip())
            return
        if cmd.kind == "help":
            ack(text=USAGE)
        elif cmd.kind == "remind":
            core.reminders.set(command["user_id"], cmd.on)
            ack(text="Weekly review reminder on: I will DM you when questions are due (at most once a week)."
                if cmd.on else "Weekly review reminder off.")
        elif cmd.kind == "score" and not cmd.file_id:
            ack(text=SCORE_HOW)
        else:
            ack()

    def run_command(command, client, respond):
        try:
            cmd = parse_command(command.get("text", ""))
        except InterviewError:
            return  # the ack already said why
        user, channel = command["user_id"], command["channel_id"]

        def say(blocks, text):  # failures go only to the person who typed the command
            respond(blocks=blocks, text=kit.fallback(text), response_type="ephemeral", replace_original=False)

        with reporting(say):
            if cmd.kind in ("start", "review"):
                start_session(core, client, user=user, channel=channel, topic=cmd.topic, count=cmd.count,
                              mode="review" if cmd.kind == "review" else "mix")
            elif cmd.kind == "score" and cmd.file_id:
                info = shared_file(client, cmd.file_id, user=user, channel=channel)  # refused: only to the asker
                score_transcript(core, client, info, channel=channel, thread_ts=None)

    app.command("/interview")(ack=ack_command, lazy=[run_command])
