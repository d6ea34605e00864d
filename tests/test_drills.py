"""Drills: real processes meeting real failures (issue: one application core). The LLM endpoint
goes down mid-session; `interview ingest` is SIGKILLed; the disk fills up."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, start_answering

REPLY = {"missing_points": [], "wrong_claims": [], "score": 4}
ANSWER = "dropout 在训练时以概率 p 随机丢弃神经元，起正则化作用；BN 对 mini-batch 做标准化，推理时用滑动平均。"


def cli(args, env, *, input=None, timeout=180, cwd=None):
    return subprocess.run([sys.executable, "-m", "bot", *args], input=input, capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)


def base_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERVIEW_", "OPENAI_"))}
    return {**env, "INTERVIEW_HOME": str(home), "PYTHONPATH": str(REPO), "COLUMNS": "200", **extra}


def test_the_endpoint_goes_down_mid_session_the_answer_waits_and_resume_grades_it(tmp_path, settings):
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        server.queue(REPLY)
        env = base_env(settings.home, INTERVIEW_LLM_BASE_URL=server.base_url, INTERVIEW_LLM_MODEL="m")
        proc = start_answering(["--count", "2", "--seed", "4", "--follow-ups", "0"], ANSWER, env, tmp_path, server)
        assert server.requests, "the first answer was never sent for grading"
        url = server.base_url
    # The server is gone (connection refused) before the second answer.
    out, errs = proc.communicate("my second answer, written while the grader is down\n.\n", timeout=120)
    assert proc.returncode == 0, errs
    assert "Could not reach the LLM endpoint" in errs and "Your answer is saved" in errs
    assert "Traceback" not in out + errs
    with sqlite3.connect(settings.db_path) as db:
        rows = db.execute("SELECT answer, status FROM answers ORDER BY position").fetchall()
        (status,) = db.execute("SELECT status FROM sessions").fetchone()
    assert [r[1] for r in rows] == ["graded", "error"] and rows[1][0].startswith("my second answer")
    assert status == "active"  # kept open so that --resume can grade the rest

    with FakeOpenAI() as back:  # the endpoint is back (a new port: point the setting at it)
        back.queue(REPLY)
        env = base_env(settings.home, INTERVIEW_LLM_BASE_URL=back.base_url, INTERVIEW_LLM_MODEL="m")
        done = cli(["start", "--resume", "--follow-ups", "0"], env, input="", cwd=tmp_path)
        assert back.requests and url != back.base_url
    assert done.returncode == 0, done.stderr
    assert "Grading your saved answer" in done.stderr
    with sqlite3.connect(settings.db_path) as db:
        assert [r[0] for r in db.execute("SELECT status FROM answers ORDER BY position")] == ["graded", "graded"]
        assert db.execute("SELECT status FROM sessions").fetchone()[0] == "finished"


def test_sigkill_during_ingest_leaves_an_index_the_next_run_completes(tmp_path, settings):
    env = base_env(settings.home, INTERVIEW_CORPUS=str(REPO / "corpus" / "deep-learning-zh.md"))
    for delay in (1.0, 3.0):  # killed while loading the embedder, then while embedding or writing
        proc = subprocess.Popen([sys.executable, "-m", "bot", "ingest"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)  # where it dies, not what is checked: every run below must complete the index
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        again = cli(["ingest"], env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    match = cli(["match", "什么是维度灾难"], env, cwd=tmp_path)
    assert match.returncode == 0 and "dl-008" in match.stdout, match.stdout + match.stderr
    nothing = cli(["ingest"], env, cwd=tmp_path)  # consistent: nothing left to add, update or delete
    assert nothing.returncode == 0 and "0 added, 0 updated, 0 deleted" in nothing.stdout + nothing.stderr


def _can_mount() -> bool:
    import tempfile

    if not shutil.which("unshare") or os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as d:
        return subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {d}"],
                              capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs a private mount namespace (root + unshare -m) for a small tmpfs")
def test_a_full_disk_gives_a_clear_error_and_no_half_written_row(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    script = f"""
set -u
mount -t tmpfs -o size=3m tmpfs {home}
export INTERVIEW_HOME={home} INTERVIEW_LLM_BACKEND=none PYTHONPATH={REPO} COLUMNS=200
{sys.executable} -m bot grade -q dl-001 -a "学习率、batch size、epoch 数都是超参数" --json > {tmp_path}/first.json || exit 10
dd if=/dev/zero of={home}/filler bs=4096 2>/dev/null
{sys.executable} -m bot grade -q dl-002 -a "loss 震荡不降通常是学习率过高，应降低学习率" > {tmp_path}/second.out 2> {tmp_path}/second.err
echo $? > {tmp_path}/second.rc
rm {home}/filler
cp {home}/history.sqlite3* {tmp_path}/
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERVIEW_")}
    run = subprocess.run(["unshare", "-m", "bash", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    err = (tmp_path / "second.err").read_text()
    assert (tmp_path / "second.rc").read_text().strip() == "1", err
    assert "disk" in err.lower() and "Fix:" in err and "Traceback" not in err
    with sqlite3.connect(tmp_path / "history.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT question_id, status FROM answers ORDER BY id").fetchall()
    # the first answer graded; the second either never written or written whole, kept to grade
    assert rows[0] == ("dl-001", "graded") and rows[1:] in ([], [("dl-002", "pending")], [("dl-002", "error")])
