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
          "INTERVIEW_CONFIG", "INTERVIEW_LOCAL_MODEL", "INTERVIEW_MATCH_THRESHOLD", "INTERVIEW_DATABASE_URL")


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
def postgres():
    """One real PostgreSQL server for the session (tests/postgres.py). Without its binaries the
    PostgreSQL variants fail in CI (CI=true: .ci/run installs them) and are skipped elsewhere."""
    from tests.postgres import MISSING, bindir, running

    found = bindir()
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    with running(found) as server:
        yield server


class History:
    """The history database of one test: `url` (also in settings.database_url and, for the
    processes and CLI runs a test starts, INTERVIEW_DATABASE_URL); `another()` is a second, empty one
    (another machine's)."""

    def __init__(self, engine: str, url: str, another):
        self.engine, self.url, self.another = engine, url, another


@pytest.fixture(params=["sqlite", "postgresql"])
def history(request, settings, monkeypatch, tmp_path):
    """Runs a test once on SQLite (the default file in the data dir) and once on PostgreSQL."""
    if request.param == "sqlite":
        n = iter(range(1, 1000))
        yield History("sqlite", settings.database_url,
                      lambda: f"sqlite:///{tmp_path / f'another-{next(n)}' / 'history.sqlite3'}")
        return
    server = request.getfixturevalue("postgres")
    made = [server.create_database()]

    def another() -> str:
        made.append(server.create_database())
        return made[-1]

    settings.database_url = made[0]
    monkeypatch.setenv("INTERVIEW_DATABASE_URL", made[0])
    yield History("postgresql", made[0], another)
    for url in made:
        server.drop_database(url)


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
