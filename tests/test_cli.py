"""Every core command through typer's CliRunner, with a fake OpenAI-compatible server as the model."""
import json
import re

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import MINI_CORPUS
from tests.fake_openai import FakeOpenAI

REPLY = {"missing_points": [], "wrong_claims": [], "score": 4}
STRONG_006 = ("Dropout 训练时以概率 p 随机丢弃神经元，是正则化方法，可看作 bagging 集成；推理时关闭 dropout 并缩放。"
              "BN 按 mini-batch 的均值方差做标准化，再用可学习的 γ、β 缩放平移，加速收敛，推理时用滑动平均统计量。")


@pytest.fixture
def runner(monkeypatch):
    from tests.conftest import MAIN_CORPUS

    monkeypatch.setenv("INTERVIEW_CORPUS", str(MAIN_CORPUS))  # the seed pack these checks are written for
    return CliRunner()


@pytest.fixture
def server(monkeypatch):
    with FakeOpenAI() as s:
        monkeypatch.setenv("INTERVIEW_LLM_BASE_URL", s.base_url)
        monkeypatch.setenv("INTERVIEW_LLM_MODEL", "fake-model")
        yield s


def test_corpus_check_ok_and_problems(runner, tmp_path):
    ok = runner.invoke(app, ["corpus", "check"])
    assert ok.exit_code == 0 and "OK: 21 items" in ok.stdout
    bad = tmp_path / "bad.md"
    bad.write_text("---\nname: x\nlanguage: en\ndomain: y\n---\n\n## q1: Q?\ntags: a\ndifficulty: easy\n\n"
                   "### Answer\nA.\n\n### Key points\n- only one\n", encoding="utf-8")
    res = runner.invoke(app, ["corpus", "check", str(bad)])
    assert res.exit_code == 1 and f"{bad}:14: q1 has 1 key points" in res.stdout


def test_ingest_then_match_json(runner):
    first = runner.invoke(app, ["ingest"])
    assert first.exit_code == 0 and "21 added" in first.stdout
    second = runner.invoke(app, ["ingest"])
    assert "0 added, 0 updated, 0 deleted, 21 unchanged" in second.stdout
    res = runner.invoke(app, ["match", "--json", "What is the purpose of a 1x1 convolution?"])
    data = json.loads(res.stdout)
    assert data["match"]["question_id"] == "dl-021" and len(data["candidates"]) == 3


def test_grade_json_prints_only_the_grade(runner, server, tmp_path):
    server.queue(REPLY)
    res = runner.invoke(app, ["grade", "--question", "dl-006", "--answer", STRONG_006, "--json"])
    assert res.exit_code == 0, res.output
    g = json.loads(res.stdout)
    for key in ("question_id", "overall", "criteria", "key_points", "wrong_claims", "feedback", "model", "latency_ms"):
        assert key in g
    assert g["question_id"] == "dl-006" and g["model"] == "fake-model"
    # the same grade the grader gives in process for the same model reply: the CLI adds nothing to it
    from bot.corpus import load_items
    from bot.grading.grader import Grader
    from bot.grading.question import Question
    from bot.llm.fake import FakeLLM
    from tests.conftest import MAIN_CORPUS

    item = next(i for i in load_items([MAIN_CORPUS]) if i.id == "dl-006")
    assert g["overall"] == Grader(FakeLLM([REPLY])).grade(Question.from_item(item), STRONG_006).overall
    assert all({"status", "evidence"} <= set(k) for k in g["key_points"])


def test_grade_matches_free_text_question_and_reads_answer_file(runner, server, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text(STRONG_006, encoding="utf-8")
    server.queue(REPLY)
    res = runner.invoke(app, ["grade", "-q", "How does dropout differ from batch normalization?", "-f", str(f), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["question_id"] == "dl-006"


@pytest.mark.parametrize("args, code, message", [
    (["grade", "-q", "dl-006"], 2, "exactly one of --answer and --answer-file"),
    (["grade", "-q", "dl-006", "-f", "/nonexistent/a.txt"], 2, "does not exist"),
    (["grade", "-q", "What is your favourite colour?", "-a", "blue"], 1, "No corpus question matches"),
    (["start", "--topic", "astrology"], 2, "No question matches the topic"),
    (["start", "--resume"], 1, "no unfinished session"),
])
def test_errors_are_messages_with_exit_codes(runner, server, args, code, message):
    res = runner.invoke(app, args)
    assert res.exit_code == code and message in res.output and "Traceback" not in res.output


def test_bad_config_is_exit_2(runner, monkeypatch):
    monkeypatch.setenv("INTERVIEW_MATCH_THRESHOLD", "high")
    res = runner.invoke(app, ["match", "dropout"])
    assert res.exit_code == 2 and "INTERVIEW_MATCH_THRESHOLD" in res.output and "Traceback" not in res.output


def test_interview_session_end_to_end(runner, server, monkeypatch):
    monkeypatch.setenv("INTERVIEW_CORPUS", str(MINI_CORPUS))
    server.queue(REPLY, REPLY)
    answers = ("Overfitting: training error is low but validation error is high; the model memorises noise.\n"
               "Use more data, dropout or weight decay, and early stopping.\n.\n"
               "/skip\n"
               "Too high a learning rate overshoots the minimum, so the loss oscillates or diverges.\n\n\n")
    res = runner.invoke(app, ["start", "--count", "3", "--seed", "7", "--follow-ups", "0"], input=answers)
    assert res.exit_code == 0, res.output
    assert len(re.findall(r"Score \d", res.output)) == 2 and "Session 1" in res.output and "skipped" in res.output
    assert 1 <= len(server.requests) <= 2  # an answer to the wrong question may stop at the off-topic check


def test_failed_grading_keeps_the_answer_and_resume_grades_it(runner, server, monkeypatch):
    monkeypatch.setenv("INTERVIEW_CORPUS", str(MINI_CORPUS))
    server.queue(("status", 500, {"error": {"message": "boom"}}))
    server.queue(("status", 500, {"error": {"message": "boom"}}))
    server.queue(("status", 500, {"error": {"message": "boom"}}))
    server.queue(("status", 500, {"error": {"message": "boom"}}))
    text = "Overfitting means low training error and high validation error; regularise and use more data.\n.\n"
    res = runner.invoke(app, ["start", "--count", "1", "--seed", "1", "--follow-ups", "0"], input=text)
    assert "answer is saved" in res.output and "not graded yet" in res.output
    server.queue(REPLY)
    res = runner.invoke(app, ["start", "--resume"], input="")
    assert res.exit_code == 0 and "Grading your saved answer" in res.output and "Score " in res.output


def test_model_info_shows_backend(runner, server):
    res = runner.invoke(app, ["model", "info"])
    assert "backend:    openai" in res.stdout and "fake-model" in res.stdout


def test_an_unexpected_error_is_a_message_not_a_traceback(runner, monkeypatch):
    from bot.cli import common

    def broken(*a, **k):
        raise ValueError("boom")

    monkeypatch.setattr(common, "load_items", broken)
    res = runner.invoke(app, ["match", "What is dropout?"])
    assert res.exit_code == 1 and "Internal error: ValueError: boom" in res.output and "INTERVIEW_DEBUG=1" in res.output
    assert "Traceback" not in res.output
    monkeypatch.setenv("INTERVIEW_DEBUG", "1")
    res = runner.invoke(app, ["match", "What is dropout?"])
    assert isinstance(res.exception, ValueError)  # the developer's way to see it


def test_a_file_system_error_says_where_and_what_to_do(runner, monkeypatch):
    from bot.cli import common

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", "/data/history.sqlite3")

    monkeypatch.setattr(common, "load_items", denied)
    res = runner.invoke(app, ["match", "What is dropout?"])
    assert res.exit_code == 1 and "Permission denied (/data/history.sqlite3)" in res.output and "Fix:" in res.output


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    """`interview corpus list --json | head -c 100`: the pipe closes under a long output. Unix
    tools stop quietly; before, this printed "Error: Broken pipe" and a fix that made no sense."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), "INTERVIEW_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "corpus", "list", "--json"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.read(100)
    proc.stdout.close()  # the reader goes away long before the JSON of 225 items is written
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first.startswith(b"[") or first.startswith(b"{")
    assert err.strip() == "", err
    assert code == 141

