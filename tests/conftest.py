import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
MINI_CORPUS = DATA / "corpus"
PACKS = REPO / "corpus"  # every shipped pack
MAIN_CORPUS = PACKS / "deep-learning-zh.md"  # the seed pack: the tests' fixtures are written for it

# Settings that must not leak in from the developer's shell into tests.
_LEAKY = ("INTERVIEW_LLM_BASE_URL", "OPENAI_BASE_URL", "INTERVIEW_LLM_API_KEY", "OPENAI_API_KEY",
          "INTERVIEW_LLM_MODEL", "INTERVIEW_LLM_BACKEND", "INTERVIEW_CHROMA_URL", "INTERVIEW_CORPUS",
          "INTERVIEW_CONFIG", "INTERVIEW_LOCAL_MODEL", "INTERVIEW_MATCH_THRESHOLD")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    for var in _LEAKY:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("INTERVIEW_HOME", str(home))
    return home


@pytest.fixture
def settings(isolated_home):
    from bot.config import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def corpus_items():
    from bot.corpus import load_items

    return load_items([MAIN_CORPUS])


def make_reply(n_points: int, covered: dict[int, str] | None = None, partial: dict[int, str] | None = None,
               wrong: list[tuple[str, str]] | None = None, depth: int = 3, clarity: int = 3,
               strengths: str = "Clear.", next_step: str = "Study more.") -> dict:
    """A model reply in the grader's schema; key points numbered from 1."""
    kps = {}
    for i in range(1, n_points + 1):
        if covered and i in covered:
            kps[f"kp{i}"] = {"evidence": covered[i], "status": "covered"}
        elif partial and i in partial:
            kps[f"kp{i}"] = {"evidence": partial[i], "status": "partial"}
        else:
            kps[f"kp{i}"] = {"evidence": "", "status": "missing"}
    return {"key_points": kps, "wrong_claims": [{"claim": c, "correction": k} for c, k in (wrong or [])],
            "depth": depth, "clarity": clarity, "strengths": strengths, "next_step": next_step}


def start_answering(args: list[str], answer: str, env: dict, cwd, server, timeout: float = 60):
    """A real `interview start ARGS` process that types `answer` and is left running once the
    fake endpoint `server` received the grading request (or `timeout` passed: the caller asserts)."""
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "bot", "start", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd, text=True)
    proc.stdin.write(answer + "\n.\n")
    proc.stdin.flush()
    deadline = time.time() + timeout
    while not server.requests and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    return proc
