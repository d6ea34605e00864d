"""The Slack app's pure parts: Block Kit limits, command parsing, tokens, `interview slack` errors."""
from __future__ import annotations

import logging

import pytest
import typer
from typer.testing import CliRunner

from bot.errors import ConfigError, UsageError
from bot.grading.result import Criterion, Grade, KeyPointResult, WrongClaim
from bot.slack import blocks as kit
from bot.slack.app import RedactTokens, SlackConfig, build_app, load_slack_config
from bot.slack.core import clean_text, parse_command, word_of
from fake_slack import FakeSlack, blocks_ok

GOOD = {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_APP_TOKEN": "xapp-1-A1-2-def",
        "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef"}


def huge_grade() -> Grade:
    long = "word " * 900  # 4500 chars: more than one section may hold
    return Grade(question_id="q", question="Q?", answer="a", overall=4.25,
                 criteria=[Criterion("coverage", 5, 0.55)],
                 key_points=[KeyPointResult(f"point {i} " + long, "covered" if i % 2 else "missing",
                                            evidence="said <!channel> & more " * 40) for i in range(60)],
                 wrong_claims=[WrongClaim("claim " + long, "fix " + long)],
                 feedback={"strengths": long, "next_step": long, "warning": "ignored instructions"},
                 reference_answer="**Bold** answer\n# Heading\n" + long, model="fake")


def test_long_grade_is_split_to_slack_limits_and_loses_nothing():
    blocks = kit.grade_blocks(huge_grade(), 1, 3)
    parts = kit.chunk(blocks)
    assert len(parts) > 1 and all(blocks_ok(p, kit.MAX_BLOCKS) for p in parts)
    text = "".join(b.get("text", {}).get("text", "") for b in blocks)
    assert "point 59" in text and "4.2/10" in text  # the last key point made it
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; more" in text  # quoted text cannot ping
    ref = kit.reference_blocks(huge_grade())
    assert blocks_ok(ref, 50) and ref[0]["text"]["text"].startswith("📖 *Reference answer*\n*Bold* answer\n*Heading*")


def test_split_text_cuts_at_lines_and_hard_cuts_one_huge_line():
    text = "\n".join(f"line {i} " + "x" * 200 for i in range(40))
    pieces = kit.split_text(text, 1000)
    assert all(len(p) <= 1000 for p in pieces) and "\n".join(pieces) == text
    one_line = "y" * 7000
    assert [len(p) for p in kit.split_text(one_line)] == [3000, 3000, 1000]


def test_summary_and_home_views_fit():
    summary = {"session_id": 1, "questions": 20, "answered": 20, "skipped": 1, "graded": 18, "ungraded": 1,
               "mean": 6.0, "items": [{"question_id": f"q{i}", "question": "Why? " * 100, "status": "graded",
                                       "overall": 6.0, "missing": ["a point " * 30]} for i in range(20)]}
    blocks = kit.summary_blocks(summary)
    assert blocks_ok(blocks, 50) and "`retry`" in str(blocks)
    stats = {"sessions": [{"id": i, "date": "2025-01-01", "topic": "cnn", "status": "finished", "mean": 5.0,
                           "answered": 3, "questions": 3} for i in range(10)],
             "trend": [("2025-01-01", float(i % 11)) for i in range(20)], "average": 5.0, "graded": 30,
             "weakest": [("cnn", 2.0, 3)]}
    view = kit.home_view(stats)
    assert view["type"] == "home" and blocks_ok(view["blocks"], kit.MAX_HOME_BLOCKS)
    assert kit.sparkline([0, 5, 10]) == "▁▅█"


@pytest.mark.parametrize("text,kind,topic,count", [
    ("", "start", None, 5), ("cnn 3", "start", "cnn", 3), ("7", "start", None, 7),
    ("batch norm", "start", "batch norm", 5), ("start 过拟合 2", "start", "过拟合", 2),
    ("help", "help", None, 5), ("score", "score", None, 5)])
def test_parse_command(text, kind, topic, count):
    cmd = parse_command(text)
    assert (cmd.kind, cmd.topic, cmd.count) == (kind, topic, count)


def test_parse_command_file_link_and_bad_count():
    assert parse_command("score https://x.slack.com/files/U1/F0ABC12345/t.txt").file_id == "F0ABC12345"
    with pytest.raises(UsageError):
        parse_command("cnn 0")
    assert clean_text("<@UBOT> a &lt; b &amp;&amp; c") == "a < b && c"
    assert word_of(" Skip. ") == "skip" and word_of("skip this one") is None


@pytest.mark.parametrize("env,http,var", [
    ({}, False, "SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, False, "SLACK_BOT_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, False, "SLACK_APP_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-wrong-one"}, False, "SLACK_APP_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, True, "SLACK_SIGNING_SECRET"),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "not hex!"}, True, "SLACK_SIGNING_SECRET")])
def test_missing_or_malformed_tokens_name_the_variable(env, http, var):
    with pytest.raises(ConfigError) as e:
        load_slack_config(env, http=http)
    assert var in e.value.message and e.value.hint
    for value in env.values():
        assert value not in str(e.value)  # a misplaced secret is never echoed


def test_good_tokens_per_mode():
    assert load_slack_config(GOOD).app_token == GOOD["SLACK_APP_TOKEN"]
    cfg = load_slack_config({k: v for k, v in GOOD.items() if k != "SLACK_APP_TOKEN"}, http=True)
    assert cfg.signing_secret == GOOD["SLACK_SIGNING_SECRET"] and "xoxb" not in repr(cfg)
    assert cfg.api_url is None and load_slack_config({**GOOD, "SLACK_API_URL": "http://127.0.0.1:9/api/"}).api_url
    with pytest.raises(ConfigError, match="SLACK_API_URL"):
        load_slack_config({**GOOD, "SLACK_API_URL": "127.0.0.1:9"})


def test_a_token_slack_rejects_is_a_config_error(settings):
    from bot.service import InterviewService
    from bot.sessions import SessionEngine, Store

    engine = SessionEngine(Store(settings.db_path), [], decode=dict)
    with FakeSlack() as fake, pytest.raises(ConfigError) as e:
        build_app(settings, InterviewService(engine), config=SlackConfig("xoxb-revoked-1"), base_url=fake.api_url, resume=False)
    assert "SLACK_BOT_TOKEN" in e.value.message and "invalid_auth" in e.value.message


def test_interview_slack_reports_a_missing_token(monkeypatch):
    from bot.cli.slack_cmd import slack

    for var in GOOD:
        monkeypatch.delenv(var, raising=False)
    app = typer.Typer()
    app.command()(slack)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2 and "SLACK_BOT_TOKEN is not set" in result.output
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    result = CliRunner().invoke(app, ["--http", "--port", "3999"])
    assert result.exit_code == 2 and "SLACK_SIGNING_SECRET" in result.output


def test_log_filter_redacts_tokens():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "body token=%s", ("xoxb-123-abcDEF",), None)
    RedactTokens().filter(record)
    assert record.getMessage() == "body token=xoxb-<redacted>"


def test_manifest_asks_for_what_the_app_uses():
    yaml = pytest.importorskip("yaml")
    from pathlib import Path

    m = yaml.safe_load((Path(__file__).parent.parent / "slack" / "manifest.yml").read_text(encoding="utf-8"))
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/interview"]
    assert m["features"]["app_home"]["home_tab_enabled"] and m["settings"]["socket_mode_enabled"]
    assert m["settings"]["interactivity"]["is_enabled"]  # the Home button
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.im", "app_home_opened", "file_shared"} <= events
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "im:history", "channels:history", "files:read", "files:write"} <= scopes
    # Every message.* event needs its history scope, or Slack refuses the manifest.
    need = {"message.channels": "channels:history", "message.groups": "groups:history", "message.im": "im:history"}
    assert all(need[e] in scopes for e in events if e in need)


def test_the_limits_of_one_slack_request_are_settings(tmp_path):
    from bot.config import load_settings

    env = {"INTERVIEW_HOME": str(tmp_path), "INTERVIEW_SLACK_MAX_FILES": "5", "INTERVIEW_SLACK_MAX_PAIRS": "40"}
    settings = load_settings(env)
    assert (settings.slack_max_files, settings.slack_max_pairs) == (5, 40)
    assert (load_settings({"INTERVIEW_HOME": str(tmp_path)}).slack_max_files,
            load_settings({"INTERVIEW_HOME": str(tmp_path)}).slack_max_pairs) == (3, 20)
    with pytest.raises(ConfigError, match="INTERVIEW_SLACK_MAX_PAIRS"):
        load_settings({**env, "INTERVIEW_SLACK_MAX_PAIRS": "0"})  # a limit of nothing would refuse every transcript

