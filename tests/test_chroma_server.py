"""The index on a real Chroma server (`chroma run`, the chromadb package's own), as a team shares
it: `INTERVIEW_CHROMA_URL=http://host:port`. Ingest, match, grade and transcript scoring through
the CLI in separate processes; two processes ingesting at once; a server that is down."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MAIN_CORPUS, MINI_CORPUS, REPO
from tests.servers import free_port, served

TRANSCRIPT = REPO / "tests" / "data" / "transcripts" / "panel_zh.md"


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    data = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with served([exe, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
                f"{url}/api/v2/heartbeat", data / "server.log", timeout=60):
        yield url


def _cli(args, home: Path, url: str, collection: str, corpus=MAIN_CORPUS, **extra):
    env = {**os.environ, "PYTHONPATH": str(REPO), "INTERVIEW_HOME": str(home), "INTERVIEW_CHROMA_URL": url,
           "INTERVIEW_COLLECTION": collection, "INTERVIEW_CORPUS": str(corpus), "INTERVIEW_LLM_BACKEND": "none",
           "COLUMNS": "200", **extra}
    return subprocess.Popen([sys.executable, "-m", "bot", *map(str, args)], env=env, cwd=home.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(*a, **kw) -> subprocess.CompletedProcess:
    p = _cli(*a, **kw)
    out, err = p.communicate(timeout=600)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def _views(items) -> int:
    from bot.index import views

    return sum(len(views(i)) for i in items)


def test_ingest_match_grade_and_score_through_the_server(chroma_url, tmp_path, corpus_items):
    home = tmp_path / "home"
    ing = _run(["ingest"], home, chroma_url, "team")
    assert ing.returncode == 0, ing.stderr
    assert not (home / "chroma").exists()  # nothing stored locally: the server holds the index
    match = _run(["match", "What does dropout do, and how does batch norm behave at inference?", "--json"],
                 home, chroma_url, "team")
    assert match.returncode == 0, match.stderr
    assert json.loads(match.stdout)["match"]["question_id"] == "dl-006"
    # A second machine (another data dir) grades and scores against the same index.
    other = tmp_path / "other"
    grade = _run(["grade", "-q", "Dropout 和 BN 的作用和区别是什么？", "-a",
                  "Dropout 训练时随机丢弃神经元防止过拟合，推理时关闭；BN 对 mini-batch 做标准化，推理时用滑动平均。", "--json"],
                 other, chroma_url, "team")
    assert grade.returncode == 0, grade.stderr
    assert json.loads(grade.stdout)["question_id"] == "dl-006"
    score = _run(["score", TRANSCRIPT, "--json"], other, chroma_url, "team")
    assert score.returncode == 0, score.stderr
    ids = [i["question_id"] for i in json.loads(score.stdout)["items"]]
    assert ids == ["dl-017", "dl-015", "dl-013"]


def test_two_processes_ingesting_at_once_leave_a_consistent_index(chroma_url, tmp_path, corpus_items):
    import chromadb

    from bot.corpus import load_items

    mini = load_items([MINI_CORPUS])
    # Two people (two data dirs) ingest the same pack at once, and a third another pack.
    procs = [_cli(["ingest"], tmp_path / "a", chroma_url, "race"),
             _cli(["ingest"], tmp_path / "b", chroma_url, "race"),
             _cli(["ingest"], tmp_path / "c", chroma_url, "race", corpus=MINI_CORPUS)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    host, port = chroma_url.rsplit(":", 1)
    col = chromadb.HttpClient(host="127.0.0.1", port=int(port)).get_collection("race")
    got = col.get(include=["metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == _views(corpus_items) + _views(mini)
    assert {m["corpus"] for m in got["metadatas"]} == {corpus_items[0].corpus, mini[0].corpus}
    again = _run(["ingest"], tmp_path / "d", chroma_url, "race")
    assert again.returncode == 0 and "0 added, 0 updated, 0 deleted" in again.stdout + again.stderr


def test_a_server_that_is_down_is_a_clear_error(tmp_path):
    res = _run(["match", "What is dropout?"], tmp_path / "home", f"http://127.0.0.1:{free_port()}", "x")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    text = " ".join((res.stdout + res.stderr).split())
    assert "Chroma" in text and "server is running" in text
