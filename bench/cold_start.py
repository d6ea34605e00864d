"""The first minutes of `interview start` with the embedded defaults, in a fresh data directory
each run (issue #27: a first grade in seconds):

Each data dir first gets `interview model fetch`, as install.sh runs it in the default one
(it joins the model and keeps the grading prompt's shared prefix); --no-fetch leaves it out.

- to the first question on screen (the model loads in the background meanwhile);
- the first grade of a session: an answer pasted the moment the question shows, submit -> grade
  panel (the model's load, the judge's load and the prompt's first evaluation all count): its
  score and key points show once the fact check is in (`first_grade`), the model's corrections
  fill in when its reply is done (`first_grade_complete`, the grade saved);
- `--resume`: Ctrl-C right after an answer is submitted, then `interview start --resume` in a new
  process, start -> its grade panel, the same two moments.

In a terminal (a pseudo-terminal, 120 columns: what a person sees; piped output shows only the
finished panel), the answer typed on stdin; a strong Chinese answer to dl-006, the one item of the
shipped packs on the topic "BN". Run it alone: generation collapses when another process is busy.

    python bench/cold_start.py [--runs 3]
Writes bench/results/cold_start.json. The install's own time is measured by running
`time ./install.sh` in a fresh clone and venv (README, docs/develop.md).
"""
from __future__ import annotations

import argparse
import codecs
import fcntl
import os
import pty
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from common import ROOT, summary, write

ANSWER = ("dropout 在训练时以概率 p 随机丢弃神经元，并把保留的激活按 1/(1-p) 放大，测试时不丢弃，相当于对很多子网络做平均，"
          "起正则化作用；BN 对每个 mini-batch 做标准化再缩放平移，训练时用 batch 统计量，推理时用滑动平均的均值和方差，"
          "它主要是加速收敛、允许更大的学习率，也带来一点正则化效果。")
COMMAND = [sys.executable, "-m", "bot", "start", "--count", "1", "--topic", "BN", "--follow-ups", "0"]  # dl-006


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class Run:
    """`interview start` in a subprocess, its terminal output read in a thread."""

    def __init__(self, env: dict, *extra: str):
        self.t0 = time.monotonic()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen([*COMMAND, *extra], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=slave, stderr=subprocess.DEVNULL, text=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        os.close(slave)
        self.master = master
        self.seen: dict[str, float] = {}
        self.text = ""  # what the terminal showed, escapes removed
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        decode = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the process is gone (EIO)
                chunk = b""
            if not chunk:
                break
            with self._cv:
                self.text += ANSI.sub("", decode.decode(chunk))  # an escape may straddle reads: marks are short
                for mark in ("Question 1 of", "Score "):
                    if mark in self.text and mark not in self.seen:
                        self.seen[mark] = time.monotonic()
                self._cv.notify_all()
        with self._cv:
            self.seen["eof"] = time.monotonic()
            self._cv.notify_all()

    def wait(self, mark: str, timeout: float = 600) -> float:
        with self._cv:
            if not self._cv.wait_for(lambda: mark in self.seen or "eof" in self.seen, timeout) or mark not in self.seen:
                raise RuntimeError(f"`interview start` never showed {mark!r}:\n{self.text[-2000:]}")
            return self.seen[mark]

    def type(self, text: str) -> float:
        self.proc.stdin.write(text + "\n.\n")
        self.proc.stdin.flush()
        return time.monotonic()

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def fresh_home(model: Path | None, fetch: bool) -> tuple[str, dict]:
    home = tempfile.mkdtemp(prefix="interview-cold-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERVIEW_LLM_")}
    env.update(INTERVIEW_HOME=home, PYTHONPATH=str(ROOT), COLUMNS="120")
    if model is not None:  # the joined model, linked in: a new data dir of a user who already has it
        (Path(home) / "models").mkdir()
        os.symlink(model, Path(home) / "models" / model.name)
    if fetch:  # what install.sh does last: join the model and keep the shared prompt prefix
        subprocess.run([sys.executable, "-m", "bot", "model", "fetch"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return home, env


def statuses(home: str) -> list[tuple[str]]:
    db = Path(home) / "history.sqlite3"
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT status FROM answers").fetchall()
    except sqlite3.Error:
        return []


def pending(home: str) -> bool:
    return statuses(home) == [("pending",)]


def saved(home: str, since: float, timeout: float = 600) -> float:
    """Seconds from `since` until the answer's grade is saved (the complete grade)."""
    deadline = time.monotonic() + timeout
    while statuses(home) != [("graded",)]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the answer was never graded: {statuses(home)}")
        time.sleep(0.05)
    return time.monotonic() - since


def one(model: Path | None, fetch: bool) -> dict:
    home, env = fresh_home(model, fetch)
    try:
        run = Run(env)
        shown = run.wait("Question 1 of") - run.t0
        sent = run.type(ANSWER)
        graded = run.wait("Score ") - sent
        complete = saved(home, sent)
        run.end()

        home2, env2 = fresh_home(model, fetch)
        try:
            run = Run(env2)
            run.wait("Question 1 of")
            run.type(ANSWER)
            deadline = time.monotonic() + 60
            while not pending(home2):  # the answer is committed: Ctrl-C
                if time.monotonic() > deadline:
                    raise RuntimeError("the answer was never saved")
                time.sleep(0.05)
            run.proc.send_signal(signal.SIGINT)
            run.proc.wait(60)
            run = Run(env2, "--resume")
            resumed = run.wait("Score ") - run.t0
            resumed_complete = saved(home2, run.t0)
            run.end()
        finally:
            shutil.rmtree(home2, ignore_errors=True)
        print(f"question {shown:.1f} s; first grade {graded:.1f} s (complete {complete:.1f} s); "
              f"resume {resumed:.1f} s (complete {resumed_complete:.1f} s)", file=sys.stderr, flush=True)
        return {"question": shown, "first_grade": graded, "first_complete": complete, "resume_grade": resumed,
                "resume_complete": resumed_complete}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--with-join", action="store_true",
                    help="let each fresh data dir join the bundled model itself (a first run ever)")
    ap.add_argument("--no-fetch", action="store_true",
                    help="skip `interview model fetch` in each fresh data dir (install.sh runs it in the default one)")
    args = ap.parse_args()
    fetch = not args.no_fetch
    model = None
    if not args.with_join:  # join it once, outside the timings
        home, env = fresh_home(None, fetch=False)
        subprocess.run([sys.executable, "-m", "bot", "model", "fetch"], cwd=ROOT, env=env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        found = sorted((Path(home) / "models").glob("*.gguf"))
        model = Path(tempfile.mkdtemp(prefix="interview-model-")) / found[0].name if found else None
        if model is not None:
            shutil.move(str(found[0]), model)
        shutil.rmtree(home, ignore_errors=True)
    runs = [one(model, fetch) for _ in range(args.runs)]
    write("cold_start", {
        "to_first_question_s": summary([r["question"] for r in runs]),
        "first_grade_after_submit_s": summary([r["first_grade"] for r in runs]),
        "first_grade_complete_after_submit_s": summary([r["first_complete"] for r in runs]),
        "resume_start_to_grade_s": summary([r["resume_grade"] for r in runs]),
        "resume_start_to_complete_grade_s": summary([r["resume_complete"] for r in runs]),
        "model_joined_in_each_run": args.with_join, "model_fetch_in_each_data_dir": fetch,
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "note": "fresh data dir each run; the answer pasted as the question shows; in a pseudo-terminal",
    })


if __name__ == "__main__":
    main()
