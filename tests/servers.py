"""Real servers started by the tests on a free loopback port (llama-cpp-python's OpenAI-compatible
server, `chroma run`): start, wait until a URL answers, stop."""
from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(argv: list[str], ready_url: str, log_path: Path, *, timeout: float = 120,
           ready: Callable[[str], bool] = lambda body: True):
    """Run `argv` until the block ends; enter once GET `ready_url` answers and `ready(body)` holds.
    A server that exits or never answers fails the test with the end of its log."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(ready_url, timeout=2) as r:
                        if ready(r.read().decode(errors="replace")):
                            break
                except OSError:
                    pass
                tail = lambda: log_path.read_text(errors="replace")[-2000:]  # noqa: E731
                assert proc.poll() is None, f"{argv[0]} exited: {tail()}"
                assert time.monotonic() < deadline, f"{' '.join(argv[:3])} did not answer in {timeout:.0f} s: {tail()}"
                time.sleep(0.3)
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=30)
