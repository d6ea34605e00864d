"""The coach in Slack, over the same real HTTP harness as tests/test_slack.py: follow-ups in the
interview's thread, `/interview review`, the App Home's due count and "Review now" button, and
the weekly reminder (`/interview remind on|off`)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from bot.coach import Coach
from bot.service import InterviewService
from bot.slack.app import make_client
from bot.slack.core import InterviewCore, Reminders
from bot.slack.listeners.interview import send_reminders
from tests.test_slack import ALICE, BOB, TOKEN, Bot, fake, fill, questions_posted  # noqa: F401 - fake is a fixture

LONG_AGO = "2026-01-05T09:00:00+00:00"  # a poor answer then: due for review long since


@pytest.fixture
def coached(fake, settings):  # noqa: F811 - the fixture imported above
    b = Bot(fake, settings, follow_ups=1)
    yield b
    b.close()


def follow_ups_posted(fake, ts):  # noqa: F811
    return [c for c in fake.of("chat.postMessage") if c.params.get("thread_ts") == ts
            and "Follow-up to question" in json.dumps(c.params.get("blocks"))]


def test_a_follow_up_on_the_missed_point_is_asked_and_graded_in_the_thread(coached, fake):  # noqa: F811
    coached.command("training 1")  # ml-001 only
    fake.wait_count("chat.update", 1)
    s = coached.session()
    ts = s.meta["thread_ts"]
    item = coached.engine.current_item(s)
    coached.llm.queue(fill, {"question": "What would you watch during training to know when to stop?"})
    coached.say(f"{item.key_points[0]}.", thread_ts=ts)  # point 1 stated, 2-5 not
    asked = fake.wait_for(lambda f: follow_ups_posted(f, ts), what="the follow-up")
    assert len(asked) == 1 and f"<@{ALICE}>" in json.dumps(asked[0].params["blocks"])
    pending = coached.engine.get(s.id).meta["follow_up"]
    assert pending["points"] == [1]  # the most important point missed: the second
    assert questions_posted(fake, ts) == [] and coached.engine.get(s.id).status == "active"

    coached.llm.queue(fill)
    coached.llm.gate.clear()  # hold the model: the follow-up's answer is saved before the ack, not after grading
    assert coached.say(item.key_points[1], thread_ts=ts)[0] == 200
    saved = coached.engine.answers(coached.engine.get(s.id), follow_ups=True)[-1]
    assert saved.source == "follow-up" and saved.status == "pending"
    assert saved.follow_up["points"] == [1] and saved.follow_up["asked"] == [1]  # what another replica needs
    assert "follow_up" not in coached.engine.get(s.id).meta  # closed with the same transaction
    coached.llm.gate.set()
    fake.wait_for(lambda f: any("Interview finished" in t for t in f.texts()), what="the summary")
    graded = [c for c in fake.of("chat.update") if "Follow-up to question 1" in json.dumps(c.params.get("blocks"))]
    assert graded, "the follow-up's grade replaced its placeholder"
    # Graded against the targeted point only, and kept as a follow-up row (not a question).
    last = coached.llm.calls[-1]["user"]
    assert item.key_points[1] in last and item.key_points[0] not in last
    rows = coached.engine.answers(coached.engine.get(s.id), follow_ups=True)
    assert [r.source for r in rows] == ["session", "follow-up"] and rows[1].status == "graded"
    assert "follow_up" not in coached.engine.get(s.id).meta


def test_skip_leaves_the_follow_up_and_the_interview_goes_on(coached, fake):  # noqa: F811
    coached.command("2")
    fake.wait_count("chat.update", 1)
    s = coached.session()
    ts = s.meta["thread_ts"]
    item = coached.engine.current_item(s)
    coached.llm.queue(fill, {"question": "Can you say more about that?"})
    coached.say(f"{item.key_points[0]}.", thread_ts=ts)
    fake.wait_for(lambda f: follow_ups_posted(f, ts), what="the follow-up")
    calls = len(coached.llm.calls)
    coached.say("hint", thread_ts=ts)
    fake.wait_for(lambda f: any("A follow-up has no hint" in t for t in f.texts()), what="no hint")
    coached.say("skip", thread_ts=ts)
    fake.wait_for(lambda f: len(questions_posted(f, ts)) == 1, what="question 2")
    assert len(coached.llm.calls) == calls  # nothing graded: skip and hint are words, not answers
    assert "follow_up" not in coached.engine.get(s.id).meta


def test_follow_ups_off_goes_straight_to_the_next_question(fake, settings):  # noqa: F811
    b = Bot(fake, settings, follow_ups=0)
    try:
        b.command("2")
        fake.wait_count("chat.update", 1)
        s = b.session()
        item = b.engine.current_item(s)
        b.llm.queue(fill)
        b.say(f"{item.key_points[0]}.", thread_ts=s.meta["thread_ts"])
        fake.wait_for(lambda f: len(questions_posted(f, s.meta["thread_ts"])) == 1, what="question 2")
        assert follow_ups_posted(fake, s.meta["thread_ts"]) == [] and len(b.llm.calls) == 1
    finally:
        b.close()


def test_review_asks_only_what_is_due(coached, fake):  # noqa: F811
    coached.command("review")
    r = fake.wait_count("/respond/1", 1)[0]
    assert r.params["response_type"] == "ephemeral" and "Nothing is due for review" in r.params["text"]
    assert coached.engine.list_sessions(ALICE) == []
    Coach(coached.engine).record(ALICE, "ml-002", 2.0, when=LONG_AGO)
    coached.command("review")
    s = coached.session()
    assert s.question_ids == ["ml-002"]


def test_app_home_shows_the_due_count_and_review_now_starts_a_review(coached, fake):  # noqa: F811
    Coach(coached.engine).record(ALICE, "ml-003", 1.5, when=LONG_AGO)
    coached.event({"type": "app_home_opened", "user": ALICE, "channel": "D0ALICE", "tab": "home", "event_ts": "1.2"})
    view = fake.wait_count("views.publish", 1)[-1].params["view"]
    text = json.dumps(json.loads(view) if isinstance(view, str) else view, ensure_ascii=False)
    assert "Due for review: 1 question" in text and "review_now" in text and "remind on" in text
    assert coached.action("review_now")[0] == 200
    s = coached.session()
    assert s.question_ids == ["ml-003"] and s.meta["channel"] == "D0ALICE"


def test_weekly_reminder_is_opt_in_once_a_week_and_only_when_due(history, coached, fake, settings):  # noqa: F811
    core = InterviewCore(InterviewService(coached.engine))
    client = make_client(TOKEN, fake.api_url)
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    Coach(coached.engine).record(ALICE, "ml-002", 2.0, when=LONG_AGO)
    Coach(coached.engine).record(BOB, "ml-002", 2.0, when=LONG_AGO)
    assert send_reminders(core, client, now) == []  # nobody asked for it
    assert coached.command("remind on")[0] == 200
    coached.executor.settle()
    assert Reminders(coached.engine.store).enabled(ALICE) and not Reminders(coached.engine.store).enabled(BOB)

    assert send_reminders(core, client, now) == [ALICE]
    dm = [c for c in fake.of("chat.postMessage") if c.params["channel"] == ALICE][-1]
    assert "1 question is due for review" in json.dumps(dm.params["blocks"]) and "review_now" in json.dumps(dm.params)
    assert send_reminders(core, client, now + timedelta(days=3)) == []  # once a week
    assert send_reminders(core, client, now + timedelta(days=7)) == [ALICE]
    coached.command("remind off")
    coached.executor.settle()
    assert send_reminders(core, client, now + timedelta(days=30)) == []


def test_a_reminder_is_not_sent_or_spent_when_nothing_is_due(history, coached, fake):  # noqa: F811
    core = InterviewCore(InterviewService(coached.engine))
    client = make_client(TOKEN, fake.api_url)
    now = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    coached.command("remind on")
    coached.executor.settle()
    assert send_reminders(core, client, now) == []
    Coach(coached.engine).record(ALICE, "ml-001", 3.0, when=LONG_AGO)
    assert send_reminders(core, client, now + timedelta(hours=1)) == [ALICE]  # the week was not used up


def test_remind_takes_only_on_or_off(history, coached, fake):  # noqa: F811
    assert coached.command("remind on")[0] == 200
    assert coached.command("remind maybe")[0] == 200
    coached.executor.settle()
    said = coached.last_body  # the ack's text: what the person who typed it sees
    assert "`/interview remind` takes `on` or `off`." in said and "`/interview remind on` sends a weekly DM" in said
    assert "Weekly review reminder" not in said and fake.of("/respond/1") == []  # nothing else said
    assert Reminders(coached.engine.store).enabled(ALICE)  # "maybe" is neither: the reminder stays on
