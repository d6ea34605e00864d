"""The Slack app end to end over real HTTP: signed requests into the real bolt app (bolt's WSGI
adapter on a local port), the real engine on SQLite (and on PostgreSQL where the history is the
point: retried events, restarts), a real grader with the fake LLM, and a fake Slack Web API
(tests/fake_slack.py) that records what the bot sends. Only 127.0.0.1."""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.corpus import load_items
from bot.grading.grader import Grader
from bot.llm.fake import FakeLLM
from bot.sessions import SessionEngine, Store
from bot.service import InterviewService
from bot.slack.app import SlackConfig, build_app, http_server
from bot.grading.result import Grade
from fake_openai import fill
from fake_slack import TEAM, FakeSlack

MINI = Path(__file__).parent / "data" / "corpus"
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "xoxb-1111-2222-SeCrEtBotToken"
ALICE, BOB, CHANNEL = "U0ALICE", "U0BOB", "C0GENERAL"


class GatedLLM(FakeLLM):
    """The fake LLM, held at a gate (proves the ack and the "grading…" state come before the grade).
    A queued callable is turned into its reply when the call comes, from the schema the grader sends."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def generate_json(self, system, user, schema, max_tokens=1024):
        assert self.gate.wait(20), "test never opened the gate"
        if self.replies and callable(self.replies[0]):
            self.replies[0] = self.replies[0](schema)
        return super().generate_json(system, user, schema, max_tokens)





class CountingExecutor(ThreadPoolExecutor):
    """The listeners' executor, counting work in flight: a test waits for the app to settle
    (nothing submitted is still running) before it checks that something did NOT happen."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._cv = threading.Condition()
        self._running = 0

    def submit(self, fn, /, *args, **kwargs):
        with self._cv:
            self._running += 1

        def run():
            try:
                return fn(*args, **kwargs)
            finally:
                with self._cv:
                    self._running -= 1
                    self._cv.notify_all()
        return super().submit(run)

    def settle(self, timeout: float = 20) -> None:
        with self._cv:
            assert self._cv.wait_for(lambda: self._running == 0, timeout), "the app never settled"


class Bot:
    """One running instance of the app: engine + bolt app + HTTP server over the history database
    in settings.database_url (the SQLite file in the data dir, unless a test asks for `history`)."""

    def __init__(self, fake: FakeSlack, settings, *, index=None, llm: GatedLLM | None = None, follow_ups: int = 0,
                 **app_kw):
        # Follow-ups (on by default in the product) are off unless a test is about them: the other
        # tests follow the question -> grade -> next question flow.
        settings.follow_ups = follow_ups
        self.fake, self.settings = fake, settings
        self.items = load_items([MINI])
        self.llm = llm or GatedLLM()
        self.engine = SessionEngine(Store(settings.database_url), self.items, decode=Grade.from_dict)
        self.executor = CountingExecutor(max_workers=4)
        # No periodic sweep unless a test is about it: its thread outlives the test (daemon) and
        # would keep polling a database the test has dropped. The startup sweep (resume) stays.
        app_kw.setdefault("sweep_every", None)
        # No hourly reminder round: its first one, at startup, runs on the real clock in a thread of
        # its own and could claim this week's reminder before a test sends it at a date of its choosing.
        self.service = InterviewService(self.engine, grader=Grader(self.llm))
        self.app = build_app(settings, self.service, config=SlackConfig(TOKEN, signing_secret=SECRET),
                             base_url=fake.api_url, executor=self.executor, index=index, reminder_every=None,
                             **app_kw)
        self.server = http_server(self.app, host="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/slack/events"
        self._eid = 0
        self.last_body = ""  # the body of the last response: a slash command's ack text

    def close(self):
        self.llm.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.executor.shutdown(wait=True)  # in-flight lazy listeners finish: a clean stop
        self.service.close()  # and the periodic sweep, if a test started one, stops

    # --- requests, signed like Slack signs them -------------------------------------------------
    def send(self, body: str, ctype: str, *, timestamp: int | None = None, signature: str | None = None,
             headers: dict | None = None) -> tuple[int, float]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = signature or SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        req = urllib.request.Request(self.url, data=body.encode(), method="POST", headers={
            "Content-Type": ctype, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, **(headers or {})})
        start = time.monotonic()
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                self.last_body = r.read().decode("utf-8", "replace")
                return r.status, time.monotonic() - start
        except urllib.error.HTTPError as e:
            self.last_body = e.read().decode("utf-8", "replace")
            return e.code, time.monotonic() - start

    def command(self, text: str = "", user: str = ALICE, channel: str = CHANNEL, **kw) -> tuple[int, float]:
        body = urlencode({"token": "legacy", "team_id": TEAM, "channel_id": channel, "user_id": user,
                          "command": "/interview", "text": text, "api_app_id": "A0APP",
                          "response_url": f"{self.fake.url}/respond/1", "trigger_id": "1.2.3"})
        return self.send(body, "application/x-www-form-urlencoded", **kw)

    def event(self, event: dict, event_id: str | None = None, **kw) -> tuple[int, float]:
        self._eid += 1
        body = json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A0APP", "type": "event_callback",
                           "event_id": event_id or f"Ev{id(self)}{self._eid}", "event_time": int(time.time()),
                           "event": event, "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}]})
        return self.send(body, "application/json", **kw)

    def say(self, text: str, *, thread_ts: str | None, user: str = ALICE, channel: str = CHANNEL,
            channel_type: str = "channel", **kw):
        ev = {"type": "message", "user": user, "text": text, "channel": channel, "channel_type": channel_type,
              "ts": f"{time.time():.6f}", "team": TEAM}
        if thread_ts:
            ev["thread_ts"] = thread_ts
        return self.event(ev, **kw)

    def action(self, action_id: str, user: str = ALICE) -> tuple[int, float]:
        payload = {"type": "block_actions", "user": {"id": user, "team_id": TEAM}, "team": {"id": TEAM},
                   "api_app_id": "A0APP", "token": "legacy", "trigger_id": "1.2.3",
                   "container": {"type": "view", "view_id": "V1"},
                   "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "action_ts": "1"}]}
        return self.send(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")

    # --- helpers --------------------------------------------------------------------------------
    def session(self, owner: str = ALICE):
        return self.fake.wait_for(lambda f: (self.engine.list_sessions(owner) or [None])[0], what="a session")

    def answer_current(self, s, **kw) -> str:
        """Queue the model's reply for the current question and answer it in the thread."""
        item = self.engine.current_item(s)
        text = item.answer.replace("\n", " ")
        self.llm.queue(fill)
        status, _ = self.say(text, thread_ts=s.meta["thread_ts"], channel=s.meta["channel"], **kw)
        assert status == 200
        return text


@pytest.fixture
def fake():
    with FakeSlack() as f:
        yield f


@pytest.fixture
def bot(fake, settings):
    b = Bot(fake, settings)
    yield b
    b.close()


def questions_posted(fake, thread_ts):
    return [c for c in fake.of("chat.postMessage")
            if c.params.get("thread_ts") == thread_ts and "*Question " in json.dumps(c.params.get("blocks"))
            and "for <@" in json.dumps(c.params.get("blocks"))]


# --- the interview ------------------------------------------------------------------------------

def test_each_question_s_prompt_prefix_is_warmed_while_the_candidate_types(bot, fake):
    """Like the terminal: the grading prefix of the question just posted is prepared in the
    background, so the grade after the answer only evaluates the answer."""
    bot.command("")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    first = bot.engine.current_item(s)
    prepared = fake.wait_for(lambda f: [p for _, p in bot.llm.prepared if first.question in p], what="a warm-up")
    assert prepared and first.answer.strip()[:20] in prepared[0]  # the prefix holds the reference, not an answer
    bot.answer_current(s)
    fake.wait_for(lambda f: len(questions_posted(f, s.meta["thread_ts"])) >= 1, what="question 2")
    second = bot.engine.current_item(bot.engine.get(s.id))
    fake.wait_for(lambda f: [p for _, p in bot.llm.prepared if second.question in p], what="the next warm-up")


def test_slash_command_acks_fast_and_posts_question_one_as_thread_root(bot, fake):
    fake.rate_limit_once("chat.update", retry_after=2)  # the lazy work is slow; the ack must not be
    status, took = bot.command("training 2")
    assert status == 200 and took < 1.5

    update = fake.wait_count("chat.update", 2)[-1]  # the 429, then the retry
    s = bot.session()
    assert s.topic == "training" and len(s.question_ids) == 1  # only ml-001 is tagged training
    placeholder = fake.of("chat.postMessage")[0]
    assert placeholder.params["channel"] == CHANNEL and "thread_ts" not in placeholder.params
    # The session lives in the thread of the message that shows question 1.
    assert s.meta == {"channel": CHANNEL, "thread_ts": update.params["ts"]}
    assert "What is overfitting" in fake.texts("chat.update")[-1]
    assert f"<@{ALICE}>" in fake.texts("chat.update")[-1]


def test_429_retry_after_is_honoured(bot, fake):
    fake.rate_limit_once("chat.postMessage", retry_after=1)
    bot.command("")
    first, second = fake.wait_count("chat.postMessage", 2)[:2]
    assert second.at - first.at >= 1.0  # waited Retry-After before trying again
    fake.wait_count("chat.update", 1)
    assert bot.session().meta["thread_ts"]


def test_thread_reply_is_graded_in_the_same_thread_then_next_question(bot, fake):
    bot.command("")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    ts = s.meta["thread_ts"]
    bot.llm.gate.clear()  # hold the model: the ack and the "grading…" state must not wait for it
    item = bot.engine.current_item(s)
    text = f"{item.key_points[0]}, as far as I know."  # one point stated: the others are missed
    bot.llm.queue(fill)
    status, took = bot.say(text, thread_ts=ts)
    assert status == 200 and took < 3.0  # Slack's ack limit; the model is held: the 200 did not wait for grading
    grading = fake.wait_for(lambda f: [c for c in f.of("chat.postMessage") if "Grading" in c.params.get("text", "")])
    assert grading[0].params["thread_ts"] == ts
    assert bot.engine.answers(s)[0].status == "pending"  # saved before grading
    bot.llm.gate.set()

    fake.wait_for(lambda f: len(questions_posted(f, ts)) >= 1, what="question 2")
    graded = [c for c in fake.of("chat.update") if c.params["ts"] != ts][0]
    assert graded.params["channel"] == CHANNEL
    body = fake.texts("chat.update")[-1]
    assert "Question 1 of 3" in body and "/10" in body and "Missed" in body
    assert item.key_points[-1] in body
    assert any("Reference answer" in t for t in fake.texts())
    every = [c for c in fake.of("chat.postMessage") if c.params.get("thread_ts")]
    assert all(c.params["thread_ts"] == ts for c in every)
    rec = bot.engine.answers(s)[0]
    assert rec.status == "graded" and rec.answer == text and len(bot.llm.calls) == 1


def test_only_the_owner_is_graded_others_get_an_ephemeral_note(bot, fake):
    bot.command("")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    bot.say("Overfitting is low training error but high test error", thread_ts=s.meta["thread_ts"], user=BOB)
    note = fake.wait_count("chat.postEphemeral", 1)[0]
    assert note.params["user"] == BOB and note.params["thread_ts"] == s.meta["thread_ts"]
    assert f"<@{ALICE}>" in note.params["text"]
    assert bot.engine.answers(s) == [] and bot.llm.calls == []
    # Ordinary channel talk outside any interview thread is ignored entirely.
    bot.say("lunch?", thread_ts=None, user=BOB)
    bot.say("unrelated thread", thread_ts="1.000001", user=BOB)
    bot.executor.settle()
    assert len(fake.of("chat.postEphemeral")) == 1 and len(fake.of("chat.postMessage")) == 1


def test_thread_words_hint_skip_stop_again(bot, fake):
    bot.command("")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    ts = s.meta["thread_ts"]
    first = bot.engine.current_item(s)
    bot.say("hint", thread_ts=ts)
    fake.wait_for(lambda f: any(first.key_points[0] in t and "💡" in t for t in f.texts()), what="hint")
    bot.say("skip", thread_ts=ts)
    fake.wait_for(lambda f: len(questions_posted(f, ts)) == 1, what="question 2 after skip")
    assert bot.engine.answers(s)[0].status == "skipped"
    bot.say("Stop", thread_ts=ts)
    fake.wait_for(lambda f: any("Interview stopped" in t for t in f.texts()), what="summary")
    assert bot.engine.get(s.id).status == "stopped"
    fake.wait_count("views.publish", 1)  # the Home tab is refreshed with the new result
    bot.say("more words after the end", thread_ts=ts)
    fake.wait_for(lambda f: any("This interview is over" in t for t in f.texts()), what="over note")
    bot.say("again", thread_ts=ts)
    fake.wait_for(lambda f: len(bot.engine.list_sessions(ALICE)) == 2, what="a second session")
    new = bot.engine.list_sessions(ALICE)[0]
    assert new.meta["thread_ts"] != ts and new.status == "active" and len(new.question_ids) == 3
    assert bot.llm.calls == []  # no word was graded as an answer


def test_a_full_interview_ends_with_a_summary(bot, fake):
    bot.command("optimization 1")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    bot.answer_current(s)
    fake.wait_for(lambda f: any("Interview finished" in t for t in f.texts()), what="summary")
    s = bot.engine.get(s.id)
    assert s.status == "finished" and bot.engine.summary(s)["graded"] == 1


def test_grading_failure_keeps_the_answer_and_retry_grades_it(bot, fake):
    from bot.errors import LLMError

    bot.command("optimization 1")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    item = bot.engine.current_item(s)
    bot.llm.queue(LLMError("endpoint down", "start the server"))
    text = item.answer.replace("\n", " ")
    bot.say(text, thread_ts=s.meta["thread_ts"])
    fake.wait_for(lambda f: any("model did not answer" in t and "retry" in t for t in f.texts("chat.update")),
                  what="error")
    assert bot.engine.answers(s)[0].status == "error"
    bot.llm.queue(fill)
    bot.say("retry", thread_ts=s.meta["thread_ts"])
    fake.wait_for(lambda f: bot.engine.answers(s)[0].status == "graded", what="regrade")
    assert bot.engine.answers(s)[0].answer == text


# --- Slack's delivery rules -----------------------------------------------------------------

def test_bad_signature_and_stale_timestamp_are_rejected(bot, fake):
    assert bot.command("", signature="v0=" + "0" * 64)[0] == 401
    ten_minutes_ago = int(time.time()) - 600
    assert bot.command("", timestamp=ten_minutes_ago)[0] == 401  # correctly signed, but stale
    assert bot.say("an answer", thread_ts="1.1", timestamp=ten_minutes_ago)[0] == 401
    bot.executor.settle()
    assert [c.method for c in fake.calls if c.method != "auth.test"] == []
    assert bot.engine.list_sessions() == []
    assert bot.command("help")[0] == 200  # the same request, signed now, is accepted


def test_retried_event_is_never_graded_twice(history, bot, fake):
    bot.command("")
    fake.wait_count("chat.update", 1)
    s = bot.session()
    bot.llm.gate.clear()  # the duplicates arrive while the first delivery is still being graded
    text = bot.answer_current(s, event_id="EvANSWER1")
    # Slack retries (it thought we were slow); also a plain duplicate without the header.
    assert bot.say(text, thread_ts=s.meta["thread_ts"], event_id="EvANSWER1",
                   headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})[0] == 200
    assert bot.say(text, thread_ts=s.meta["thread_ts"], event_id="EvANSWER1")[0] == 200
    bot.llm.gate.set()
    fake.wait_for(lambda f: len(questions_posted(f, s.meta["thread_ts"])) >= 1, what="question 2")
    bot.executor.settle()
    assert len(bot.engine.answers(s)) == 1 and len(bot.llm.calls) == 1
    assert bot.engine.get(s.id).position == 1
    # A retry of an event this process never took (sent while the bot was down) is handled once.
    bot.answer_current(bot.engine.get(s.id), event_id="EvANSWER2", headers={"X-Slack-Retry-Num": "1"})
    fake.wait_for(lambda f: len(questions_posted(f, s.meta["thread_ts"])) >= 2, what="question 3")
    assert [a.status for a in bot.engine.answers(s)] == ["graded", "graded"]


def test_restart_mid_session_loses_nothing_and_the_thread_continues(history, fake, settings):
    one = Bot(fake, settings)
    one.command("")
    fake.wait_count("chat.update", 1)
    s = one.session()
    ts = s.meta["thread_ts"]
    one.answer_current(s, event_id="EvQ1")
    fake.wait_for(lambda f: len(questions_posted(f, ts)) == 1, what="question 2")
    one.close()
    # The process dies right after saving answer 2, before grading it.
    dead = SessionEngine(Store(settings.database_url), load_items([MINI]), decode=Grade.from_dict)
    item2 = dead.current_item(s)
    text2 = item2.answer.replace("\n", " ")
    dead.submit(dead.get(s.id), text2)

    # A new process: new engine and app over the same database. At startup it grades the saved
    # answer in the thread and goes on with question 3.
    two = Bot(fake, settings, llm=GatedLLM().queue(fill))
    try:
        fake.wait_for(lambda f: len(questions_posted(f, ts)) == 2, what="question 3 after restart")
        assert "Question 2 of 3" in "".join(fake.texts("chat.update"))
        # Slack re-delivers answer 1 to the new process: already handled, dropped.
        assert two.say("dup", thread_ts=ts, event_id="EvQ1", headers={"X-Slack-Retry-Num": "2"})[0] == 200
        two.answer_current(two.engine.get(s.id))
        fake.wait_for(lambda f: any("Interview finished" in t for t in f.texts()), what="summary")
        final = two.engine.get(s.id)
        assert final.status == "finished"
        assert [a.status for a in two.engine.answers(final)] == ["graded"] * 3
        assert len(two.llm.calls) == 2  # answer 2 (resumed) and answer 3; answer 1 was not re-graded
        assert all(c.params.get("thread_ts") in (None, ts) for c in fake.of("chat.postMessage"))
    finally:
        two.close()


# --- DMs, App Home ----------------------------------------------------------------------------

def test_home_button_starts_a_dm_interview_and_dm_answers_are_graded(bot, fake):
    assert bot.action("start_interview")[0] == 200
    s = bot.session()
    assert s.meta["channel"] == "D0ALICE"  # posting to the user id opened the app's DM
    fake.wait_count("chat.update", 1)
    # In a DM the answer may be written at top level instead of in the thread.
    item = bot.engine.current_item(s)
    bot.llm.queue(fill)
    bot.say(item.answer, thread_ts=None, channel="D0ALICE", channel_type="im")
    fake.wait_for(lambda f: bot.engine.answers(s) and bot.engine.answers(s)[0].status == "graded", what="grade")
    fake.wait_for(lambda f: len(questions_posted(f, s.meta["thread_ts"])) == 1, what="question 2")


def test_dm_start_and_usage(bot, fake):
    bot.say("hello", thread_ts=None, channel="D0ALICE", channel_type="im")
    fake.wait_for(lambda f: any("start [topic] [count]" in t for t in f.texts()), what="usage")
    bot.say("start cnn 1", thread_ts=None, channel="D0ALICE", channel_type="im")
    s = bot.session()
    assert s.topic == "cnn" and s.meta["channel"] == "D0ALICE"
    fake.wait_count("chat.update", 1)
    # A new `start` in the DM ends the open interview (with its summary) and opens another.
    bot.say("start 2", thread_ts=None, channel="D0ALICE", channel_type="im")
    fake.wait_for(lambda f: len(bot.engine.list_sessions(ALICE)) == 2, what="second DM session")
    assert bot.engine.get(s.id).status == "stopped" and any("Interview stopped" in t for t in fake.texts())
    bot.say("start nosuchtopic", thread_ts=None, channel="D0BOB", channel_type="im", user=BOB)
    fake.wait_for(lambda f: any("No question matches the topic" in t for t in f.texts()), what="topic error")
    assert bot.engine.list_sessions(BOB) == []


def test_app_home_shows_sessions_average_and_weakest_topics(bot, fake):
    bot.command("optimization 1")
    fake.wait_count("chat.update", 1)
    bot.answer_current(bot.session())
    n = len(fake.wait_count("views.publish", 1))  # finishing the interview refreshed the Home tab
    bot.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home",
               "event_ts": "1.2"})
    view = fake.wait_count("views.publish", n + 1)[-1].params
    assert view["user_id"] == ALICE
    text = json.dumps(json.loads(view["view"]) if isinstance(view["view"], str) else view["view"], ensure_ascii=False)
    grade = bot.engine.answers(bot.session())[0].grade
    assert f"{grade.overall:.1f}/10" in text and "Weakest topics" in text and "optimization" in text
    assert "start_interview" in text
    # Another user sees their own (empty) Home.
    bot.event({"type": "app_home_opened", "user": BOB, "channel": "D0BOB", "tab": "home", "event_ts": "1.3"})
    bob_view = fake.wait_count("views.publish", n + 2)[-1].params
    assert "no interviews yet" in json.dumps(bob_view)


def test_slash_command_errors_are_ephemeral(bot, fake):
    bot.command("nosuchtopic")
    r = fake.wait_count("/respond/1", 1)[0]
    assert r.params["response_type"] == "ephemeral" and "No question matches" in r.params["text"]
    assert fake.of("chat.postMessage") == []  # nothing was posted in the channel
    status, _ = bot.command("score")
    assert status == 200 and fake.of("chat.postMessage") == []


def test_bot_token_never_reaches_the_logs(bot, fake, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("slack_bolt", "slack_sdk", "bot"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        bot.command("optimization 1")
        fake.wait_count("chat.update", 1)
        bot.answer_current(bot.session())
        fake.wait_for(lambda f: any("Interview finished" in t for t in f.texts()), what="summary")
        bot.command("", signature="v0=bad")
    finally:
        for name in ("slack_bolt", "slack_sdk", "bot"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert "Sending a request" in caplog.text  # debug logging really was on
    assert "SeCrEtBotToken" not in caplog.text


# --- transcripts --------------------------------------------------------------------------------

@pytest.fixture
def scoring(monkeypatch):
    import bot.reports.html  # noqa: F401 - the real renderer: an import error fails the test
    import bot.transcripts.scoring  # noqa: F401


def test_transcript_shared_in_a_dm_is_scored_and_the_report_uploaded(fake, settings, scoring):
    items = load_items([MINI])
    b = Bot(fake, settings)  # the app opens and syncs the Chroma index (in the tmp home) on first use
    try:
        q = items[1]
        answer = q.answer.replace("\n", " ")
        fake.add_file("F0TRANSCRIPT", "mock.md", f"Q: {q.question}\nA: {answer}\n".encode())
        b.llm.queue(fill)
        b.event({"type": "message", "subtype": "file_share", "user": ALICE, "text": "score please",
                 "channel": "D0ALICE", "channel_type": "im", "ts": "1700000001.000100",
                 "files": [{"id": "F0TRANSCRIPT", "name": "mock.md"}]})
        fake.wait_count("files.completeUploadExternal", 1, timeout=30)
        download = [c for c in fake.calls if c.method.startswith("/files-pri/")][0]
        assert download.headers["authorization"] == f"Bearer {TOKEN}"  # downloaded with the bot token
        assert fake.of("files.info")[0].params["file"] == "F0TRANSCRIPT"
        summary = fake.texts("chat.update")[-1]
        assert "mock.md" in summary and "/10" in summary and q.question in summary
        assert "not in the corpus" not in summary  # the question was matched to ml-002
        upload = fake.of("files.completeUploadExternal")[0].params
        assert upload["channel_id"] == "D0ALICE" and upload["thread_ts"] == "1700000001.000100"
        assert [f["title"] for f in json.loads(upload["files"])] == ["Interview report: mock.md"]
        report = next(iter(fake.uploads.values())).decode()
        assert "<html" in report.lower() and q.question in report
        assert len(b.llm.calls) == 1
        with b.engine.store.connect() as db:  # saved in the shared history too
            assert db.execute("SELECT count(*) FROM answers WHERE source='transcript'").scalar() == 1
    finally:
        b.close()


def test_transcript_by_slash_command_link(bot, fake, scoring):
    bot.command("score https://fake.slack.com/files/U0ALICE/F0NOSUCHFILE/x.txt")
    fake.wait_count("files.info", 1)
    assert fake.of("files.info")[0].params["file"] == "F0NOSUCHFILE"
    refusal = fake.wait_count("/respond/1", 1)[0].params  # a file the bot cannot see: only the asker is told
    assert refusal["response_type"] == "ephemeral" and "F0NOSUCHFILE" in refusal["text"]
    bot.executor.settle()
    assert fake.of("chat.postMessage") == []
