"""Cold start of `interview start` to the first question on screen (index and corpus already set
up by one earlier run, as a user would have them).

    python bench/cold_start.py [--runs 5]"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from common import ROOT, summary, write


def first_question_s(env: dict) -> float:
    t = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "bot", "start", "--count", "1"], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if "Question 1 of" in line:
                return time.monotonic() - t
        raise RuntimeError("interview start never showed a question")
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="interview-cold-")
    env = {**os.environ, "INTERVIEW_HOME": home, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    subprocess.run([sys.executable, "-m", "bot", "ingest"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    times = [first_question_s(env) for _ in range(args.runs)]
    write("cold_start", {"to_first_question_s": summary(times),
                         "note": "the model loads in the background after the question is shown"})


if __name__ == "__main__":
    main()
