"""Load test of `interview web` (issue #26): --people simulated people answer at once.

Starts the fake OpenAI-compatible server (tests/fake_openai.py), answering every grading after
--latency seconds, and one real `interview web` process on loopback over a fresh history and the
shipped packs (each person gets a new question of their own choosing, as in a deployment). One
warm-up person answers first (the first grading loads the key-point judge). Then each person, in a
thread of their own with their own cookies, does what a browser does: the home page (CSRF cookie),
their profile, a one-question interview, the answer (a form post), then the grading's event stream
until `done`. Measured per answer: submit -> first progress event, and submit -> grade.
Checked afterwards: every answer is in the history, graded, and each was sent to the endpoint once.

    python bench/web_load.py --people 20 --latency 1.0 --concurrency 20
    python bench/web_load.py --answers real   # people's real answers to their own questions (our
                                              # graded dev answers), not one sentence each
Writes bench/results/web_load.json (--answers real: web_load-real.json) and prints a summary.
"""
from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fake_openai import FakeOpenAI, fill  # noqa: E402
from tests.servers import free_port  # noqa: E402

MINI = REPO / "tests" / "data" / "corpus"


@contextmanager
def web_server(home: Path, fake: FakeOpenAI, *args: str, corpus: Path | None = MINI, **env: str):
    """One `interview web` process on a free loopback port over `home` and `corpus` (None: the
    shipped packs), grading through `fake` (follow-ups off); yields (url, process) once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if k != "INTERVIEW_CORPUS"},
           "INTERVIEW_HOME": str(home), **({"INTERVIEW_CORPUS": str(corpus)} if corpus else {}),
           "INTERVIEW_LLM_BASE_URL": fake.base_url, "INTERVIEW_LLM_MODEL": "fake-model",
           "INTERVIEW_FOLLOW_UPS": "0", **env}
    with open(home / "web.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "bot", "web", "--port", str(port), *args], env=env, cwd=REPO,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None, (home / "web.log").read_text()
                time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(30)


def reply_after(latency: float):
    def reply(body: dict):
        time.sleep(latency)  # the endpoint's own time
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {"type": "object"}
        return fill(schema)
    return reply


class Person:
    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self.jar = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "interview_csrf")

    def post(self, path: str, **fields) -> tuple[str, str]:
        data = urllib.parse.urlencode({"csrf": self.csrf(), **fields}).encode()
        with self.http.open(self.url + path, data=data, timeout=60) as r:
            return r.url, r.read().decode()

    def run(self, text: str, out: dict, go: threading.Event, topic: str = "") -> None:
        try:
            self.http.open(self.url + "/", timeout=60).read()
            self.post("/profile", profile=self.name)
            session_url, page = self.post("/start", count="1", mode="new", **({"topic": topic} if topic else {}))
            asked = re.search(r'name="asked" value="([^"]+)"', page).group(1)  # the prompt the page shows
            go.wait()
            t0 = time.monotonic()
            req = urllib.request.Request(session_url + "/answer", data=urllib.parse.urlencode(
                {"csrf": self.csrf(), "asked": asked, "action": "answer",
                 "text": text}).encode())
            with self.http.open(req, timeout=60) as r:
                page = r.read().decode()
            answer_id = re.search(r'data-events="/events/answer:(\d+)"', page).group(1)
            first = None
            with self.http.open(f"{self.url}/events/answer:{answer_id}", timeout=600) as events:
                for raw in events:
                    line = raw.decode().strip()
                    if line.startswith("event: stage") and first is None:
                        first = time.monotonic() - t0
                    if line.startswith("event: done"):
                        break
            out.update(ok=True, first_progress=first, to_grade=time.monotonic() - t0, answer_id=int(answer_id))
        except Exception as e:  # noqa: BLE001 - counted as lost, reported
            out.update(ok=False, error=f"{type(e).__name__}: {e}")


def answers(kind: str, people: int) -> list[tuple[str, str]]:
    """Each person's (topic, answer): "short", a new question of their own and one sentence;
    "real", the question of one of our graded dev answers (its id as the topic) and that answer,
    a different one each. The answer carries the marker that counts how often it reached the endpoint."""
    if kind == "short":
        return [("", f"Person {i:02d}: overfitting means low training error but high test error, marker-{i:02d}.")
                for i in range(people)]
    from bot.evaluation import datasets

    rows = sorted((r for r in datasets.load_graded("dev").rows if len(r.answer) >= 80 and not r.structural),
                  key=lambda r: (r.id[::-1]))  # spread over the questions
    return [(rows[i % len(rows)].question_id, f"{rows[i % len(rows)].answer} (marker-{i:02d})") for i in range(people)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--latency", type=float, default=1.0, help="the fake endpoint's seconds per grading")
    ap.add_argument("--concurrency", type=int, default=20, help="INTERVIEW_LLM_CONCURRENCY: gradings sent at once")
    ap.add_argument("--packs", choices=("shipped", "mini"), default="shipped",
                    help="the questions people get: the shipped packs (a deployment's), or the tests' 3-item pack "
                         "(every question's side embedded at its first grading: no shelf covers it)")
    ap.add_argument("--answers", choices=("short", "real"), default="short",
                    help="what people write: one sentence each, or the answers people wrote to our graded dev "
                         "questions (a median of about 200 characters; the grade's CPU grows with the answer)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    a.out = a.out or REPO / "bench" / "results" / ("web_load.json" if a.answers == "short" else "web_load-real.json")

    home = Path(tempfile.mkdtemp(prefix="web-load-"))
    with FakeOpenAI() as fake:
        fake.default = reply_after(a.latency)
        with web_server(home, fake, corpus=None if a.packs == "shipped" else MINI,
                        INTERVIEW_LLM_CONCURRENCY=str(a.concurrency)) as (url, proc):
            warm: dict = {}
            now = threading.Event()
            now.set()
            t = time.monotonic()
            Person(url, "warm-up").run("warm-up answer about overfitting", warm, now)
            print(f"warm-up grading (loads the judge): {time.monotonic() - t:.1f} s")
            sent_before = len(fake.requests)
            cpu_before = cpu_seconds(proc.pid)

            results = [dict() for _ in range(a.people)]
            texts = answers(a.answers, a.people)
            go = threading.Event()
            threads = [threading.Thread(target=Person(url, f"p{i:02d}").run,
                                        args=(texts[i][1], results[i], go, texts[i][0]))
                       for i in range(a.people)]
            for th in threads:
                th.start()
            time.sleep(1.0)  # everyone has their question open
            go.set()
            for th in threads:
                th.join(900)
            server_cpu = cpu_seconds(proc.pid) - cpu_before

        ok = [r for r in results if r.get("ok")]
        sent = [r["body"]["messages"][-1]["content"] for r in fake.requests[sent_before:]]
        per_marker = {i: sum(f"marker-{i:02d}" in s for s in sent) for i in range(a.people)}
        with sqlite3.connect(home / "history.sqlite3") as db:
            rows = db.execute("SELECT a.status, s.owner, a.question_id FROM answers a JOIN sessions s "
                              "ON s.id = a.session_id WHERE s.owner LIKE 'p%'").fetchall()
    to_grade = [r["to_grade"] for r in ok]
    first = [r["first_progress"] for r in ok if r["first_progress"] is not None]
    summary = {
        "people": a.people, "answers": a.answers, "latency_s": a.latency, "concurrency": a.concurrency, "packs": a.packs,
        "answers_ok": len(ok), "errors": [r.get("error") for r in results if not r.get("ok")],
        "answers_in_history": len(rows), "graded_in_history": sum(st == "graded" for st, _, _ in rows),
        "questions": len({q for _, _, q in rows}),
        "sent_to_endpoint_per_answer": sorted(set(per_marker.values())),
        "submit_to_grade_s": {"p50": round(pct(to_grade, 50), 2), "p95": round(pct(to_grade, 95), 2),
                              "max": round(max(to_grade), 2)} if to_grade else None,
        "submit_to_first_progress_s": {"p50": round(pct(first, 50), 3), "p95": round(pct(first, 95), 3),
                                       "max": round(max(first), 3)} if first else None,
        "server_cpu_s_per_answer": round(server_cpu / max(1, a.people), 3),
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
