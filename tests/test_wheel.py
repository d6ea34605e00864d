"""The package installs anywhere: the wheel carries its prompts and packs, runs from another
directory, and writes nothing into site-packages at run time."""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import REPO


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_installs_into_a_fresh_venv_and_runs_outside_the_checkout(tmp_path):
    from tests.fake_openai import FakeOpenAI

    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(dist)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next(dist.glob("interview_bot-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies (chromadb, llama-cpp-python, ...) come from this environment, offline: a
    # path line in a .pth file adds its site-packages after the new venv's own, and runs none of
    # its hooks (so the checkout's editable install stays invisible).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    inst = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    installed = site / "bot"
    assert (installed / "packs" / "deep-learning-zh.md").is_file() and (installed / "prompts" / "grade_system.md").is_file()
    # Both judges and the shelf of question vectors: grading reads them from the package
    for name in ("judge/kpjudge-int8.onnx", "judge/structural/kpjudge-int8.onnx", "judge/structural/kpjudge.json",
                 "vectors.npz"):
        assert (installed / name).is_file(), name
    before = _files(installed)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTERVIEW_", "OPENAI_", "PYTHON"))}
    env.update(INTERVIEW_HOME=str(tmp_path / "home"), COLUMNS="200")
    interview = str(venv / "bin" / "interview")
    where = subprocess.run([str(py), "-c", "import bot; print(bot.__file__)"], capture_output=True, text=True,
                           cwd=elsewhere, env=env)
    assert where.stdout.startswith(str(installed)), where.stdout + where.stderr
    listed = subprocess.run([interview, "corpus", "list", "--packs", "--json"], capture_output=True, text=True,
                            cwd=elsewhere, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    packs = {p["name"]: p["items"] for p in json.loads(listed.stdout)["packs"]}
    assert packs["deep-learning-zh"] == 21 and sum(packs.values()) >= 21
    with FakeOpenAI() as server:
        server.queue({"missing_points": [], "wrong_claims": [], "score": 4})
        graded = subprocess.run([interview, "grade", "-q", "dl-006", "--json", "-a",
                                 "dropout 训练时随机丢弃神经元防止过拟合，推理时关闭；BN 标准化每个 mini-batch。"],
                                capture_output=True, text=True, cwd=elsewhere, timeout=180,
                                env={**env, "INTERVIEW_LLM_BASE_URL": server.base_url, "INTERVIEW_LLM_MODEL": "fake"})
        assert graded.returncode == 0, graded.stderr
        assert server.requests and "dropout" in json.dumps(server.requests[0]["body"], ensure_ascii=False)
    grade = json.loads(graded.stdout)
    assert grade["question_id"] == "dl-006" and grade["key_points"]
    assert _files(installed) == before  # nothing written into site-packages at run time
    assert (tmp_path / "home" / "history.sqlite3").is_file()
