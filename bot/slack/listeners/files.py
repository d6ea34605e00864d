"""Transcript scoring from a file shared in Slack: only a file the asker shared, and only so much
of it (INTERVIEW_SLACK_MAX_FILES a message, INTERVIEW_SLACK_MAX_PAIRS a transcript); download it
with the bot token, score it, post the summary and upload the HTML report."""
from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from slack_sdk.errors import SlackApiError

from bot.errors import InterviewError, UsageError
from bot.slack import blocks as kit
from bot.slack.core import InterviewCore, capped, user_facing
from bot.slack.listeners.interview import post, replace, reporting

log = logging.getLogger(__name__)

MAX_TRANSCRIPT_BYTES = 5 * 1024 * 1024  # what the transcript readers accept
SCORE_WORD = re.compile(r"\bscore\b", re.IGNORECASE)


def register(app, core: InterviewCore) -> None:
    # The `message` event of the share carries the word "score" and is what we act on (messages.py);
    # file_shared is subscribed so Slack delivers file details, and acknowledged here so bolt does
    # not answer 404 and log an unhandled request for every upload.
    @app.event("file_shared")
    def file_shared(ack):
        ack()


def _trusted(url: str, client) -> bool:
    """The bot token goes only to Slack (or to the API host the client was pointed at, in tests)."""
    host = urlparse(url).hostname or ""
    return host == "slack.com" or host.endswith(".slack.com") or host == urlparse(client.base_url).hostname


class _NoForeignRedirect(urllib.request.HTTPRedirectHandler):
    """urllib keeps the Authorization header across redirects: refuse any that leave Slack."""

    def __init__(self, client):
        self.client = client

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not _trusted(newurl, self.client):
            raise UsageError("Slack redirected the file download to an unexpected host.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def shared_file(client, file_id: str, *, user: str, channel: str) -> dict:
    """files.info of a file that `user`, asking in `channel`, may have scored there: one they
    uploaded, or one shared in `channel` (they are in it, and so is everyone who will see the
    summary and the report). Anything else is refused before anything is posted; a file the bot
    cannot see gets the same answer, so the refusal does not tell whether a file exists."""
    try:
        info = client.files_info(file=file_id)["file"]
    except SlackApiError as e:
        if e.response is None or e.response.get("error") not in ("file_not_found", "file_deleted"):
            raise
        info = {}
    shared_in = {c for key in ("channels", "groups", "ims") for c in info.get(key) or []}
    shared_in |= {c for where in (info.get("shares") or {}).values() for c in where}
    if info.get("user") != user and channel not in shared_in:
        raise UsageError(f"I only score a transcript you shared: {file_id} is not a file you uploaded, "
                         "nor one shared in this conversation.",
                         "Share the file here, or send it to me in a direct message with the word `score`.")
    return info


def download(client, info: dict) -> tuple[str, bytes]:
    name = info.get("name") or f"{info['id']}.txt"
    if (info.get("size") or 0) > MAX_TRANSCRIPT_BYTES:
        raise UsageError(f"{name} is {info['size']} bytes; transcripts up to {MAX_TRANSCRIPT_BYTES} are accepted.",
                         "Split the transcript into smaller files.")
    url = info.get("url_private_download") or info.get("url_private")
    if not url or not _trusted(url, client):
        raise UsageError(f"Slack gave no download link for {name}.", "Share the file again.")
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token}"})
    try:
        with urllib.request.build_opener(_NoForeignRedirect(client)).open(req, timeout=30) as r:
            data = r.read(MAX_TRANSCRIPT_BYTES + 1)
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.URLError as e:
        raise InterviewError(f"Could not download {name} from Slack ({e.reason}).", "Try again in a minute.") from None
    if ctype.startswith("text/html") and not name.lower().endswith((".html", ".htm")):
        # Slack answers a login page, not an error, when the token may not read the file.
        raise InterviewError(f"Slack returned a web page instead of {name}.",
                             "Reinstall the app from slack/manifest.yml: it needs the files:read scope.")
    if len(data) > MAX_TRANSCRIPT_BYTES:
        raise UsageError(f"{name} is larger than {MAX_TRANSCRIPT_BYTES} bytes.", "Split the transcript.")
    return name, data


def score_files(core: InterviewCore, client, files: list[dict], *, channel: str, thread_ts: str) -> None:
    """The transcripts attached to one DM (the asker's own message: theirs to score), at most
    core.max_files of them, each in its own reply; then a note naming the limit if it left some out."""
    def say(blocks, text):
        post(client, channel, blocks, text, thread_ts)

    kept = files[:core.max_files]
    for f in kept:
        with reporting(say):  # one file's failure does not stop the next
            score_transcript(core, client, client.files_info(file=f["id"])["file"], channel=channel,
                             thread_ts=thread_ts)
    if len(kept) < len(files):
        note = capped(len(kept), len(files), "files", "slack_max_files")
        say(kit.sections(note), note)


def score_transcript(core: InterviewCore, client, info: dict, *, channel: str, thread_ts: str | None) -> None:
    """Post "scoring…", score the file (files.info's `info`; its first core.max_pairs pairs),
    replace it with the summary, upload the HTML report."""
    placeholder = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="⏳ Scoring the transcript…")
    channel, ts = placeholder["channel"], placeholder["ts"]
    where = thread_ts or ts  # the report goes under the summary

    def say(blocks, text):
        replace(client, channel, ts, blocks, text, where)

    with reporting(say):
        try:
            from bot.reports.html import render_html
            from bot.transcripts.readers import decode
        except ImportError:
            raise InterviewError("Transcript scoring is not available in this version of the bot.") from None
        name, data = download(client, info)
        index = core.index()
        core.service.grader()  # loaded (or its error raised) before anything is saved
        # From memory, not a temp file: the scorer's messages then name the file as shared. An
        # answer's grading error is written into the report as a Slack user may read it.
        report = core.service.score_transcript(decode(data, name), name, index=index, max_pairs=core.max_pairs,
                                               shown=user_facing)
        blocks = kit.transcript_blocks(report.to_dict(), name)
        if report.pairs_found > len(report.items):
            blocks[1:1] = kit.sections(capped(len(report.items), report.pairs_found, "question/answer pairs",
                                              "slack_max_pairs"))
        replace(client, channel, ts, blocks, f"Transcript {name}: {kit.score_text(report.overall)}", where)
        stem = re.sub(r"[^\w.\-]+", "_", Path(name).stem) or "transcript"
        client.files_upload_v2(channel=channel, thread_ts=where, content=render_html(report),
                               filename=f"{stem}-report.html", title=f"Interview report: {name}")
