"""Drills: real processes meeting real failures (issue: one application core). The LLM endpoint
goes down mid-session; `interview ingest` is SIGKILLed; the disk fills up."""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

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


def _chroma_rows(db, table: str) -> int | None:
    """Rows in a table of Chroma's SQLite file, read-only; None while there is no such table yet."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2)) as c:
            return c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:
        return None


def _kill_when(proc, seen, what: str, timeout: float = 180) -> None:
    """SIGKILL `proc` as soon as `seen()` (checked every 5 ms) says it got to `what`; it must not
    have exited before."""
    deadline = time.monotonic() + timeout
    while not seen():
        assert proc.poll() is None, f"ingest exited ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"ingest did not get to {what} in {timeout} s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL, f"ingest had exited by itself when {what}"


def test_sigkill_during_ingest_leaves_an_index_the_next_run_completes(tmp_path, settings):
    from bot.corpus import load_items

    pack = REPO / "corpus" / "deep-learning-zh.md"
    env = base_env(settings.home, INTERVIEW_CORPUS=str(pack))
    n = len(load_items([pack]))
    # Where the kill lands is read from Chroma's own SQLite tables (chromadb 1.5: `collections`, and
    # `embeddings_queue`, its write-ahead log): killed once the collection exists and nothing is
    # written yet (the embedder loads, the items are embedded); then, on a new store, as soon as the
    # log holds the items' rows (before or while they are applied to the segments).
    db = settings.chroma_path / "chroma.sqlite3"
    points = [("the collection exists, nothing written",
               lambda: _chroma_rows(db, "collections") == 1 and _chroma_rows(db, "embeddings_queue") == 0),
              ("the write began", lambda: (_chroma_rows(db, "embeddings_queue") or 0) > 0)]
    for what, seen in points:
        shutil.rmtree(settings.chroma_path, ignore_errors=True)
        proc = subprocess.Popen([sys.executable, "-m", "bot", "ingest"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _kill_when(proc, seen, what)
        again = cli(["ingest"], env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        # Killed before any write, every item is added; killed once the log held the rows, they are
        # kept and applied on the next open: nothing left to add.
        done = f"{n} added, 0 updated, 0 deleted, 0 unchanged" if what.endswith("nothing written") \
            else f"0 added, 0 updated, 0 deleted, {n} unchanged"
        assert done in again.stdout, again.stdout
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
