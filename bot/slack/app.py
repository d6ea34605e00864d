"""The Slack app: tokens from the environment, the bolt App over the application service, and the two
ways to run it (Socket Mode, or the Events API over HTTP)."""
from __future__ import annotations

import logging
import os
import re
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import Settings
from bot.errors import ConfigError
from bot.service import InterviewService
from bot.slack.core import InterviewCore

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
LISTENER_THREADS = 256  # acks and lazy listeners in flight at once (most of them wait for the model)
MANIFEST_HINT = "Create the app from slack/manifest.yml and copy the value from its settings (see slack/README.md)."
TOKEN_RE = re.compile(r"\b(xox[a-z]|xapp)-[A-Za-z0-9-]+")


@dataclass
class SlackConfig:
    bot_token: str
    app_token: str | None = None  # Socket Mode
    signing_secret: str = ""  # HTTP mode
    api_url: str | None = None  # SLACK_API_URL: another Web API base (a load test's fake Slack)

    def __repr__(self) -> str:  # a config object in a traceback or log must not show secrets
        return "SlackConfig(<redacted>)"


def _token(env: dict, name: str, prefix: str, what: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ConfigError(f"{name} is not set.", f"Set {name} to the app's {what} ({prefix}…). {MANIFEST_HINT}")
    if not value.startswith(prefix) or not re.fullmatch(r"[A-Za-z0-9-]+", value):
        # Never echo the value: it may be a real secret pasted into the wrong variable.
        raise ConfigError(f"{name} is malformed: it must be a {what}, which starts with {prefix}.",
                          f"Copy the {what} into {name}. {MANIFEST_HINT}")
    return value


def load_slack_config(env: dict | None = None, *, http: bool = False) -> SlackConfig:
    """The tokens a mode needs; a missing or malformed one is a ConfigError naming the variable."""
    env = dict(os.environ if env is None else env)
    bot = _token(env, "SLACK_BOT_TOKEN", "xoxb-", "Bot User OAuth Token")
    if http:
        secret = (env.get("SLACK_SIGNING_SECRET") or "").strip()
        if not secret:
            raise ConfigError("SLACK_SIGNING_SECRET is not set; HTTP mode needs it to verify requests from Slack.",
                              f"Copy the Signing Secret from Basic Information. {MANIFEST_HINT}")
        if not re.fullmatch(r"[0-9a-f]{16,128}", secret):
            raise ConfigError("SLACK_SIGNING_SECRET is malformed: it is a hex string "
                              "(Basic Information → Signing Secret).", MANIFEST_HINT)
        return SlackConfig(bot, signing_secret=secret, api_url=_api_url(env))
    return SlackConfig(bot, app_token=_token(env, "SLACK_APP_TOKEN", "xapp-", "App-Level Token"), api_url=_api_url(env))


def _api_url(env: dict) -> str | None:
    url = (env.get("SLACK_API_URL") or "").strip()
    if url and not re.match(r"https?://[^/\s]+", url):
        raise ConfigError(f"SLACK_API_URL is {url!r}, not an http(s) URL.",
                          "Unset it to talk to Slack, or set it to a Web API base such as http://127.0.0.1:8080/api/.")
    return url or None


class RedactTokens(logging.Filter):
    """Belt and braces: whatever a library logs (request bodies, URLs), no token reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if TOKEN_RE.search(msg):
            record.msg, record.args = TOKEN_RE.sub(r"\1-<redacted>", msg), None
        return True


def make_client(token: str, base_url: str | None = None) -> WebClient:
    # 429s wait out Retry-After and try again (twice), instead of dropping a grade on the floor.
    handlers = [ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)]
    kwargs = {"base_url": base_url} if base_url else {}
    return WebClient(token=token, retry_handlers=handlers, timeout=30, **kwargs)


def dedupe_events(core: InterviewCore):
    """Global middleware: each Events API delivery is handled once, across retries and restarts.

    A retry (`X-Slack-Retry-Num`) of an event we already took is dropped; a retry of one we never saw
    (the bot was down when Slack first sent it) is handled, so an answer sent during a restart is
    not lost. Runs after bolt's signature check, so only genuine events can claim an id."""

    def middleware(body, request, next, logger):
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not core.events.first_time(event_id):
            retry = (request.headers.get("x-slack-retry-num") or ["-"])[0]
            logger.info("dropping duplicate delivery of event %s (retry %s)", event_id, retry)
            return BoltResponse(status=200, body="", headers={"x-slack-no-retry": "1"})
        return next()

    return middleware


def build_app(settings: Settings, service: InterviewService, *, config: SlackConfig | None = None,
              index=None, base_url: str | None = None, executor: Executor | None = None,
              resume: bool = True, reminder_every: float | None = 3600.0, sweep_every: float | None = 30.0,
              replica: str | None = None) -> App:
    """The bolt App over the application `service`. `base_url` points the Web API client elsewhere
    (tests); `index` is the question index for transcript scoring (opened on first use when None).

    Every Slack app is a replica (`replica` names it; host:pid:random by default): answers are graded
    under a claim in the database, so several processes over one PostgreSQL grade each answer once.
    `resume` sweeps up answers left pending at startup, `sweep_every` seconds afterwards too (those
    of a replica that died)."""
    config = config or load_slack_config()
    opener = (lambda: index) if index is not None else _index_factory(settings, service)
    service.serve_as(replica or replica_name())
    core = InterviewCore(service, index_factory=opener, follow_ups=settings.follow_ups,
                         max_files=settings.slack_max_files, max_pairs=settings.slack_max_pairs)
    client = make_client(config.bot_token, base_url)
    if executor is None:
        # Bolt runs the acks and the lazy listeners on one pool (10 threads by default). A lazy
        # grading waits for a model slot (INTERVIEW_LLM_CONCURRENCY) while holding a thread, so
        # under load the pool filled and new requests' acks missed Slack's 3 s: 29 of 40 slash
        # commands were refused in bench/load.py. Waiting threads are cheap; give them room.
        from concurrent.futures import ThreadPoolExecutor

        executor = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="slack-listener")
    try:
        app = App(client=client, signing_secret=config.signing_secret, process_before_response=False,
                  request_verification_enabled=True, listener_executor=executor, name="interview-bot")
    except BoltError as e:  # auth.test refused the token
        raise ConfigError(f"Slack rejected SLACK_BOT_TOKEN ({_api_error(e)}).",
                          "Reinstall the app to the workspace and copy the new Bot User OAuth Token.") from None
    app.use(dedupe_events(core))
    from bot.slack.listeners import register
    from bot.slack.listeners.messages import save_answers_early

    app.use(save_answers_early(core))  # after dedupe_events: a duplicate delivery saves nothing

    register(app, core)
    if resume:
        from bot.slack.listeners.interview import sweep

        app.listener_runner.listener_executor.submit(sweep, core, client, app.listener_runner.listener_executor.submit)
    if sweep_every:
        _sweep_periodically(core, client, sweep_every, app.listener_runner.listener_executor.submit)
    if reminder_every:
        _remind_periodically(core, client, reminder_every)
    return app


def _remind_periodically(core: InterviewCore, client, every: float) -> None:
    """Check for weekly reminders to send every `every` seconds (a daemon thread: it dies with
    the process; a reminder is claimed in the database before it is sent, so replicas agree)."""
    import threading

    from bot.slack.listeners.interview import send_reminders

    def loop():
        while True:
            try:
                send_reminders(core, client)
            except Exception:  # noqa: BLE001 - a failed round must not end the loop
                log.exception("Reminder round failed")
            time.sleep(every)

    threading.Thread(target=loop, name="slack-reminders", daemon=True).start()


def replica_name() -> str:
    """This process among the replicas: host and pid say where it ran (a log line names it), the
    random part keeps a restarted container that gets the same pid from inheriting old claims."""
    import secrets
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _sweep_periodically(core: InterviewCore, client, every: float, run) -> None:
    """Every `every` seconds, grade the answers whose replica died (their claim's lease ran out).
    A daemon thread, like the reminders; the first round is the startup one (`resume`)."""
    import threading

    from bot.slack.listeners.interview import sweep

    def loop():
        while True:
            time.sleep(every)
            if core.service.closed:  # the app stopped: its database may be gone
                return
            try:
                if n := sweep(core, client, run):
                    log.info("Graded %d answer(s) left by a stopped replica", n)
            except Exception:  # noqa: BLE001 - a failed round (database restarting) must not end the loop
                log.exception("Sweep round failed")

    threading.Thread(target=loop, name="slack-sweep", daemon=True).start()


def _api_error(e: BoltError) -> str:
    m = re.search(r"'error': '([a-z_]+)'", str(e))
    return m.group(1) if m else "auth.test failed"


def _index_factory(settings: Settings, service: InterviewService):
    def open_index():
        from bot.index import QuestionIndex

        idx = QuestionIndex(settings)
        idx.ingest(list(service.items.values()))  # cheap when nothing changed
        return idx

    return open_index


# --- running --------------------------------------------------------------------------------

class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # access lines go to our logger, not stderr
        log.debug("http: " + format, *args)


def http_server(app: App, host: str = "0.0.0.0", port: int = 3000, path: str = EVENTS_PATH) -> WSGIServer:
    """Bolt's WSGI adapter on a threaded wsgiref server: one slow request never delays another's ack."""
    from slack_bolt.adapter.wsgi import SlackRequestHandler

    return make_server(host, port, SlackRequestHandler(app, path=path), server_class=_ThreadingWSGIServer,
                       handler_class=_QuietHandler)


def run_socket_mode(app: App, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError

    try:
        SocketModeHandler(app, app_token).start()
    except SlackApiError as e:  # apps.connections.open refused the app-level token
        code = e.response.get("error") if e.response is not None else "unknown"
        raise ConfigError(f"Slack rejected SLACK_APP_TOKEN ({code}).",
                          "Create an App-Level Token with the connections:write scope (Basic Information) "
                          "and enable Socket Mode.") from None
