"""What one Slack user can reach (issue #24), over the real HTTP harness of tests/test_slack.py:
only a transcript they shared is scored, an error of the bot's machinery reaches the channel as
what happened and what to do (hosts, URLs and the provider's raw text only in the log), and one
message scores at most INTERVIEW_SLACK_MAX_FILES files of at most INTERVIEW_SLACK_MAX_PAIRS pairs."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from bot.config import Settings
from bot.corpus import load_items
from bot.llm.openai_compat import OpenAICompatLLM
from bot.sessions import Store
from fake_openai import FakeOpenAI
from fake_slack import block_text
from test_slack import ALICE, BOB, CHANNEL, MINI, Bot, fake, fill  # noqa: F401 - fake: the fixture

RAW = "upstream gpu-node-7.corp.internal:8000 overloaded (request req_93F2)"  # a provider's raw error
REFUSED = "only score a transcript you shared"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """One question index of the test corpus for the module (embedding it is the slow part)."""
    from bot.index import QuestionIndex

    idx = QuestionIndex(Settings(home=tmp_path_factory.mktemp("index")))
    idx.ingest(load_items([MINI]))
    return idx


def transcript(items, answers: int | None = None) -> bytes:
    """A practice transcript asking `items`' questions, each answered with its reference answer."""
    return "".join(f"Q: {i.question}\nA: {i.answer.replace(chr(10), ' ')}\n" for i in items[:answers]).encode()


def endpoint_bot(fake, settings, endpoint: FakeOpenAI, **kw) -> Bot:
    """The app grading through the real OpenAI-compatible backend, against `endpoint`."""
    llm = OpenAICompatLLM("m", endpoint.base_url, "sk-live-4242")
    llm.gate = threading.Event()  # what the harness opens when it closes
    return Bot(fake, settings, llm=llm, **kw)


def posted(fake) -> str:
    """Everything the bot sent to Slack, as one text."""
    return json.dumps([c.params for c in fake.calls], ensure_ascii=False) + "".join(
        c.body.decode("utf-8", "replace") for c in fake.calls)


def saved_transcript_answers(bot) -> int:
    with bot.engine.store.connect() as db:
        return db.execute("SELECT count(*) FROM answers WHERE source='transcript'").scalar()


# --- who may have a file scored ---------------------------------------------------------------------

def test_score_refuses_a_file_the_asker_did_not_share_and_posts_nothing(fake, settings, index):
    items = load_items([MINI])
    fake.add_file("F0SECRET1", "alice-mock.md", transcript(items), user=ALICE, shared_in=("G0ALICEONLY",))
    bot = Bot(fake, settings, index=index)
    try:
        # Bob links Alice's transcript (shared only in a private channel he is not in), then a file
        # id that does not exist: the same refusal, so it does not tell which files exist.
        bot.command(f"score https://fake.slack.com/files/{ALICE}/F0SECRET1/alice-mock.md", user=BOB)
        bot.command("score F0NOSUCHFILE", user=BOB)
        refusals = [r.params for r in fake.wait_count("/respond/1", 2)]
        bot.executor.settle()
    finally:
        bot.close()
    assert all(r["response_type"] == "ephemeral" and REFUSED in r["text"] for r in refusals)
    assert len({r["text"].replace("F0SECRET1", "F…").replace("F0NOSUCHFILE", "F…") for r in refusals}) == 1
    assert fake.of("chat.postMessage") == [] and fake.of("files.getUploadURLExternal") == []
    assert not [c for c in fake.calls if c.method.startswith("/files-pri/")]  # never downloaded
    assert saved_transcript_answers(bot) == 0 and bot.llm.calls == []
    assert items[0].question not in posted(fake)


def test_score_takes_a_file_shared_in_the_conversation_or_uploaded_by_the_asker(fake, settings, index):
    items = load_items([MINI])
    fake.add_file("F0SHAREDHERE", "team-mock.md", transcript(items, 1), user=ALICE, shared_in=(CHANNEL,))
    fake.add_file("F0BOBSOWN", "bob-mock.md", transcript(items[1:], 1), user=BOB, shared_in=("D0BOB",))
    bot = Bot(fake, settings, index=index)
    try:
        bot.llm.queue(fill, fill)
        bot.command("score F0SHAREDHERE", user=BOB)  # Alice's, but shared in the channel Bob asks in
        bot.command("score F0BOBSOWN", user=BOB)  # Bob's own, shared only in his DM
        fake.wait_count("files.completeUploadExternal", 2, timeout=60)
        bot.executor.settle()
    finally:
        bot.close()
    assert fake.of("/respond/1") == []  # nothing refused
    summaries = " ".join(fake.texts("chat.update"))
    assert "team-mock.md" in summaries and "bob-mock.md" in summaries
    assert saved_transcript_answers(bot) == 2


# --- errors of the machinery ------------------------------------------------------------------------

def test_model_errors_in_a_thread_say_what_to_do_and_leave_hosts_and_provider_text_to_the_log(
        fake, settings, caplog):
    with FakeOpenAI() as endpoint:
        # the provider's raw reply, then a refused key (the error names the endpoint's URL)
        endpoint.queue(("status", 400, {"error": {"message": RAW}}, {}),
                       ("status", 401, {"error": {"message": "Incorrect API key provided: sk-live-4242"}}, {}))
        bot = endpoint_bot(fake, settings, endpoint)
        try:
            bot.command("optimization 1")
            fake.wait_count("chat.update", 1)
            s = bot.session()
            ts = s.meta["thread_ts"]
            bot.say(bot.engine.current_item(s).answer.replace("\n", " "), thread_ts=ts)
            fake.wait_for(lambda f: any("Interview finished" in t for t in f.texts()), what="the summary")
            bot.say("retry", thread_ts=ts)
            fake.wait_for(lambda f: len(endpoint.requests) >= 2 and len(
                [t for t in f.texts() if "Interview finished" in t]) >= 2, what="the retry's summary")
            bot.executor.settle()
        finally:
            bot.close()
    errors = [t for t in fake.texts("chat.update") if "did not answer" in t]
    assert len(errors) == 2 and all("try again in a few minutes" in t.lower() and "`retry`" in t for t in errors)
    everything = posted(fake)
    for secret in ("gpu-node-7", "req_93F2", "sk-live", endpoint.base_url, "127.0.0.1"):
        assert secret not in everything
    assert RAW in caplog.text and endpoint.base_url in caplog.text  # whoever runs the bot finds them
    assert [a.status for a in bot.engine.answers(s)] == ["error"]  # the answer is kept


def test_a_database_failure_tells_the_user_what_to_do_and_the_log_where(history, fake, settings, caplog, request):
    bot = Bot(fake, settings)
    where = Store(settings.database_url).db.where  # the SQLite file's path, or the server's host and port
    try:
        if history.engine == "postgresql":
            request.getfixturevalue("postgres").drop_database(history.url)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{settings.db_path}{suffix}").unlink(missing_ok=True)
        bot.command("")
        refusal = fake.wait_count("/respond/1", 1)[0].params
        bot.executor.settle()
    finally:
        bot.close()
    shown = refusal["text"] + block_text(refusal["blocks"])
    assert refusal["response_type"] == "ephemeral"
    assert "database is not available" in shown and "try again in a few minutes" in shown.lower()
    assert where not in posted(fake) and "sqlite" not in posted(fake).lower()
    assert where in caplog.text


def test_a_transcript_s_summary_and_report_name_no_host_nor_provider_text(fake, settings, caplog, index):
    items = load_items([MINI])
    fake.add_file("F0MOCK", "mock.md", transcript(items, 2))
    with FakeOpenAI() as endpoint:
        endpoint.queue(("status", 400, {"error": {"message": RAW}}, {}))
        bot = endpoint_bot(fake, settings, endpoint, index=index)
        try:
            bot.event({"type": "message", "subtype": "file_share", "user": ALICE, "text": "score", "channel": "D0ALICE",
                       "channel_type": "im", "ts": "1700000001.000100", "files": [{"id": "F0MOCK", "name": "mock.md"}]})
            fake.wait_count("files.completeUploadExternal", 1, timeout=60)
            bot.executor.settle()
        finally:
            bot.close()
    summary = fake.texts("chat.update")[-1]
    report = next(iter(fake.uploads.values())).decode()
    # the first answer met the failing endpoint; the second was not sent to it again
    assert summary.count("grading model did not answer") == 2 and "grading model did not answer" in report
    for secret in ("gpu-node-7", "req_93F2", endpoint.base_url, "127.0.0.1"):
        assert secret not in posted(fake) and secret not in report
    assert RAW in caplog.text


# --- limits of one request --------------------------------------------------------------------------

def test_a_dm_with_many_files_and_long_transcripts_are_capped_and_the_reply_names_the_limits(
        fake, settings, index):
    items = load_items([MINI])
    settings.slack_max_files, settings.slack_max_pairs = 2, 2
    files = []
    for n in range(3):  # three transcripts of three pairs each; answers differ, so none is a cached grade
        fid = f"F0MANY{n}"
        fake.add_file(fid, f"mock-{n}.md", transcript(items, 3).replace(b"\nQ:", f" ({n})\nQ:".encode()))
        files.append({"id": fid, "name": f"mock-{n}.md"})
    bot = Bot(fake, settings, index=index)
    try:
        bot.llm.queue(*[fill] * 4)
        bot.event({"type": "message", "subtype": "file_share", "user": ALICE, "text": "score these",
                   "channel": "D0ALICE", "channel_type": "im", "ts": "1700000001.000100", "files": files})
        fake.wait_for(lambda f: any("INTERVIEW_SLACK_MAX_FILES" in t for t in f.texts()), timeout=90,
                      what="the note on the files left out")
        bot.executor.settle()
    finally:
        bot.close()
    assert [c.params["file"] for c in fake.of("files.info")] == ["F0MANY0", "F0MANY1"]
    assert any("Scored the first 2 of 3 files; the limit is INTERVIEW_SLACK_MAX_FILES" in t for t in fake.texts())
    summaries = [t for t in fake.texts("chat.update") if "Transcript" in t]
    assert len(summaries) == 2 and all(
        "Scored the first 2 of 3 question/answer pairs; the limit is INTERVIEW_SLACK_MAX_PAIRS" in t for t in summaries)
    assert saved_transcript_answers(bot) == 4 and len(bot.llm.calls) <= 4  # 2 files x 2 pairs, nothing more
