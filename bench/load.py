"""Load test of `interview slack --http` replicas over one PostgreSQL (issue #12), on loopback.

Starts a real PostgreSQL (tests/postgres.py), the fake OpenAI-compatible server (tests/fake_openai.py)
answering every grading after --latency seconds, the fake Slack Web API (tests/fake_slack.py), and
--replicas real `interview slack --http` processes. --people simulated people each run a
--questions interview by signed Slack HTTP requests (the slash command, then answers as thread
messages), each request to a replica in turn, as a load balancer would. Once --kill-at of all answers
are sent, replica 0 is SIGKILLed; requests it can no longer take go to another replica as Slack's
retries (X-Slack-Retry-Num) would. With --compare, the same run with one replica and no kill first.

Chroma: one real `chroma run` server (the chromadb package's own) holds the question index for every
replica (INTERVIEW_CHROMA_URL; a collection per run). Grading an interview answer does not query it;
matching a shared transcript does: --transcripts of the people, after their interview, share a
practice transcript in a DM (a file_share event), and the replica that takes it syncs the pack into
the server (two replicas at once on their first transcript) and matches each question there.
Answers are counted from the fake Slack's record (a grade is a chat.update of a "grading…"
placeholder in the person's thread) and checked against the database.

People think: each answer is sent a random 0 to --think seconds after its question is posted (real
people take a minute or more to write an answer; with --think 2 the load test is a flood).

    python bench/load.py --people 100 --replicas 2 --compare --think 120 --ramp 60 --timeout 600
Writes bench/results/load.json and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from fake_openai import FakeOpenAI, fill  # noqa: E402
from fake_slack import TEAM, FakeSlack  # noqa: E402
from tests.postgres import MISSING, bindir, running  # noqa: E402
from tests.servers import free_port, served  # noqa: E402

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "xoxb-1111-2222-LoadTestToken"
PACK = REPO / "corpus" / "deep-learning-en.md"
QUESTION_RE = re.compile(r"\*Question (\d+)")
GRADE_RE = re.compile(r"^Question (\d+): ")





def reply_to(body: dict) -> dict:
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or fmt.get("schema") or {"type": "object"}
    return fill(schema)


class Watch:
    """What the people see in Slack, indexed as the fake records each call (no polling of the log)."""

    def __init__(self, fake: FakeSlack):
        self.fake = fake
        self.cv = threading.Condition()
        self.thread_of_user: dict[str, str] = {}
        self.questions: dict[str, dict[int, float]] = defaultdict(dict)  # thread -> question n -> when posted
        self.grades: dict[str, list[tuple[int, float]]] = defaultdict(list)  # thread -> (question n, when)
        self.summaries: dict[str, float] = {}
        self.reports: dict[str, float] = {}  # DM channel -> when the transcript's report was uploaded
        self.transcript_summaries: dict[str, str] = {}  # DM channel -> the summary's text
        fake.on_call = self.saw

    def saw(self, call) -> None:
        p = call.params
        blocks = p.get("blocks")
        text = json.dumps(blocks) if blocks else ""
        with self.cv:
            if call.method == "files.completeUploadExternal":
                self.reports.setdefault(p.get("channel_id", ""), call.at)
            elif call.method == "chat.update" and p.get("text", "").startswith("Transcript "):
                self.transcript_summaries[p.get("channel", "")] = text
            elif call.method == "chat.update":
                root = self.fake.thread_of.get(p.get("ts"))
                if root is None:
                    return
                if root == p["ts"]:  # the thread's root turned into question 1
                    m = re.search(r"for <@(U\w+)>", text)
                    if m and "*Question 1" in text:
                        self.thread_of_user[m.group(1)] = root
                        self.questions[root][1] = call.at
                elif (g := GRADE_RE.match(p.get("text", ""))):
                    self.grades[root].append((int(g.group(1)), call.at))
            elif call.method == "chat.postMessage" and p.get("thread_ts"):
                m = QUESTION_RE.search(text)
                if m and "for <@" in text:
                    self.questions[p["thread_ts"]][int(m.group(1))] = call.at
                elif p.get("text") == "Interview summary":
                    self.summaries[p["thread_ts"]] = call.at
            self.cv.notify_all()

    def wait(self, predicate, timeout: float):
        with self.cv:
            return self.cv.wait_for(predicate, timeout)


class Replicas:
    """The `interview slack --http` processes and which one takes the next request."""

    def __init__(self, n: int, env: dict, root: Path):
        self.procs, self.urls, self.alive = [], [], []
        self._next = 0
        self._lock = threading.Lock()
        for i in range(n):
            home = root / f"replica-{i}"
            home.mkdir()
            port = free_port()
            log = open(root / f"replica-{i}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-m", "bot", "slack", "--http", "--port", str(port)],
                                    env={**env, "INTERVIEW_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=REPO)
            self.procs.append(proc)
            self.urls.append(f"http://127.0.0.1:{port}/slack/events")
            self.alive.append(True)
        self.logs = [root / f"replica-{i}.log" for i in range(n)]

    def wait_ready(self, timeout: float = 600) -> float:
        start = time.monotonic()
        for i, url in enumerate(self.urls):
            port = int(url.split(":")[2].split("/")[0])
            while True:
                assert self.procs[i].poll() is None, f"replica {i} exited: {self.logs[i].read_text()[-3000:]}"
                assert time.monotonic() - start < timeout, f"replica {i} never listened"
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.3)
        return time.monotonic() - start

    def pick(self) -> int:
        with self._lock:
            for _ in range(len(self.urls)):
                i = self._next % len(self.urls)
                self._next += 1
                if self.alive[i]:
                    return i
        raise RuntimeError("no replica alive")

    def kill(self, i: int) -> None:
        with self._lock:
            self.alive[i] = False
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def send(self, body: str, ctype: str) -> int:
        """POST signed like Slack; a replica that does not answer gets the request retried on another."""
        for attempt in range(4):
            i = self.pick()
            ts = str(int(time.time()))
            headers = {"Content-Type": ctype, "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)}
            if attempt:
                headers.update({"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"})
            req = urllib.request.Request(self.urls[i], data=body.encode(), method="POST", headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    r.read()
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
            except OSError:
                with self._lock:
                    self.alive[i] = self.procs[i].poll() is None
        return 0

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def event_body(event: dict, event_id: str) -> str:
    """An Events API delivery of `event`, as Slack posts it."""
    return json.dumps({"token": "legacy", "team_id": TEAM, "api_app_id": "A0APP", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event,
                       "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}]})


def transcript(rng: random.Random, n: int = 2) -> str:
    """A practice transcript of `n` questions of the pack, asked as written, with short answers."""
    questions = re.findall(r"^## dl-en-\d+: (.+)$", PACK.read_text(encoding="utf-8"), flags=re.M)
    return "".join(f"Q: {q}\nA: I would start from the definition and then give an example from my last "
                   f"project, where it mattered for training speed.\n\n" for q in rng.sample(questions, n))


def run(args, replicas_n: int, kill: bool, server, root: Path, chroma_url: str) -> dict:
    url = server.create_database()
    with FakeSlack() as fake, FakeOpenAI() as llm:
        llm.default = ("sleep", args.latency, reply_to)
        watch = Watch(fake)
        env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
               "INTERVIEW_CHROMA_URL": chroma_url, "INTERVIEW_COLLECTION": f"load-{replicas_n}-{int(time.time())}",
               "INTERVIEW_DATABASE_URL": url, "INTERVIEW_LLM_BACKEND": "openai", "INTERVIEW_LLM_BASE_URL": llm.base_url,
               "INTERVIEW_LLM_MODEL": "load-test", "INTERVIEW_FOLLOW_UPS": "0", "INTERVIEW_CORPUS": str(PACK),
               "INTERVIEW_LLM_CONCURRENCY": str(args.concurrency), "INTERVIEW_CLAIM_LEASE": str(args.lease),
               "INTERVIEW_SWEEP_EVERY": str(args.sweep_every), "PYTHONUNBUFFERED": "1"}
        run_root = Path(tempfile.mkdtemp(prefix=f"r{replicas_n}-", dir=root))
        reps = Replicas(replicas_n, env, run_root)
        try:
            startup = reps.wait_ready()
            total = args.people * args.questions
            sent: dict[tuple[str, int], float] = {}  # (thread, question n) -> when the answer was acked
            sent_lock = threading.Lock()
            killed_at = [None]
            failures = []
            shared: dict[str, float] = {}  # DM channel -> when its transcript was shared
            sharers = set(random.Random(1).sample(range(args.people), round(args.transcripts * args.people)))

            def person(i: int) -> None:
                user = f"U{i:05d}"
                time.sleep(random.uniform(0, args.ramp))
                body = urlencode({"token": "legacy", "team_id": TEAM, "channel_id": f"C{i:05d}", "user_id": user,
                                  "command": "/interview", "text": str(args.questions), "api_app_id": "A0APP",
                                  "response_url": f"{fake.url}/respond/{i}", "trigger_id": "1.2.3"})
                if reps.send(body, "application/x-www-form-urlencoded") != 200:
                    failures.append(f"{user}: the command was refused")
                    return
                if not watch.wait(lambda: user in watch.thread_of_user, args.timeout):
                    failures.append(f"{user}: no question 1")
                    return
                thread = watch.thread_of_user[user]
                for n in range(1, args.questions + 1):
                    if not watch.wait(lambda: n in watch.questions[thread], args.timeout):
                        failures.append(f"{user}: no question {n}")
                        return
                    time.sleep(random.uniform(0, args.think))
                    ev = {"type": "message", "user": user, "text": f"{user}'s answer to question {n}: a neural "
                          "network learns weights by gradient descent on a loss.", "channel": f"C{i:05d}",
                          "channel_type": "channel", "ts": f"{time.time():.6f}", "thread_ts": thread, "team": TEAM}
                    if reps.send(event_body(ev, f"Ev{i:05d}{n:02d}"), "application/json") != 200:
                        failures.append(f"{user}: answer {n} refused")
                        return
                    with sent_lock:
                        sent[(thread, n)] = time.monotonic()
                        if kill and killed_at[0] is None and len(sent) >= args.kill_at * total:
                            killed_at[0] = time.monotonic()
                            threading.Thread(target=reps.kill, args=(0,)).start()
                watch.wait(lambda: thread in watch.summaries, args.timeout)
                if i in sharers:
                    dm, fid = f"D{i:05d}", f"F{i:07d}TR"
                    fake.add_file(fid, f"practice-{i}.md", transcript(random.Random(i)).encode())
                    ev = {"type": "message", "subtype": "file_share", "user": user, "text": "score this please",
                          "channel": dm, "channel_type": "im", "ts": f"{time.time():.6f}", "team": TEAM,
                          "files": [{"id": fid, "name": f"practice-{i}.md"}]}
                    if reps.send(event_body(ev, f"Ev{i:05d}TR"), "application/json") != 200:
                        failures.append(f"{user}: transcript refused")
                        return
                    with sent_lock:
                        shared[dm] = time.monotonic()
                    watch.wait(lambda: dm in watch.reports, args.timeout)

            t0 = time.monotonic()
            people = [threading.Thread(target=person, args=(i,), daemon=True) for i in range(args.people)]
            for t in people:
                t.start()
            for t in people:
                t.join(args.timeout * (args.questions + 2))
            # answers acked but not graded yet get the lease and a sweep round to be taken over
            watch.wait(lambda: all(any(q == n for q, _ in watch.grades[th]) for th, n in sent),
                       args.lease + 3 * args.sweep_every + 30)
            elapsed = time.monotonic() - t0
            with watch.cv:
                per_answer = defaultdict(list)
                for th, gs in watch.grades.items():
                    for n, at in gs:
                        per_answer[(th, n)].append(at)
            latencies = sorted(min(per_answer[k]) - at for k, at in sent.items() if per_answer.get(k))
            graded = [k for k in sent if per_answer.get(k)]
            db_rows = _db_counts(url)
            last_grade = max((min(v) for v in per_answer.values()), default=t0)
            with watch.cv:
                reported = {dm: watch.reports[dm] - at for dm, at in shared.items() if dm in watch.reports}
                unmatched = sum("not in the corpus" in watch.transcript_summaries.get(dm, "") for dm in reported)
            return {
                "replicas": replicas_n, "killed_replica_0": kill,
                "killed_after_s": round(killed_at[0] - t0, 1) if killed_at[0] else None,
                "startup_s": round(startup, 1), "people": args.people, "questions": args.questions,
                "answers_submitted": len(sent), "answers_graded": len(graded),
                "answers_lost": len(sent) - len(graded),
                "graded_twice": sum(len(v) > 1 for v in per_answer.values()),
                "latency_p50_s": _pct(latencies, 50), "latency_p95_s": _pct(latencies, 95),
                "latency_max_s": round(latencies[-1], 2) if latencies else None,
                "throughput_grades_per_s": round(len(graded) / max(1e-9, last_grade - t0), 2),
                "elapsed_s": round(elapsed, 1), "llm_requests": len(llm.requests),
                "transcripts_shared": len(shared), "transcripts_reported": len(reported),
                "transcript_questions_unmatched": unmatched,
                "transcript_p50_s": _pct(sorted(reported.values()), 50),
                "transcript_p95_s": _pct(sorted(reported.values()), 95),
                "db": db_rows, "failures": failures[:10], "failure_count": len(failures),
            }
        finally:
            reps.stop()
            server.drop_database(url)


def _db_counts(url: str) -> dict:
    import psycopg

    with psycopg.connect(url) as db:
        rows = db.execute("SELECT status, count(*) FROM answers GROUP BY status").fetchall()
        dup = db.execute("SELECT count(*) FROM (SELECT session_id, position FROM answers WHERE source='session' "
                         "GROUP BY session_id, position HAVING count(*) > 1) d").fetchone()[0]
        transcripts = db.execute("SELECT count(*) FROM answers WHERE source='transcript'").fetchone()[0]
    return {"answers_by_status": dict(rows), "positions_saved_twice": dup, "transcript_answers": transcripts}


def _pct(values: list[float], p: int):
    if not values:
        return None
    return round(values[min(len(values) - 1, int(len(values) * p / 100))], 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--latency", type=float, default=2.0, help="seconds per fake LLM call")
    ap.add_argument("--concurrency", type=int, default=4, help="INTERVIEW_LLM_CONCURRENCY of each replica")
    ap.add_argument("--think", type=float, default=2.0, help="a person takes up to this long to answer")
    ap.add_argument("--ramp", type=float, default=5.0, help="people start within this many seconds")
    ap.add_argument("--kill-at", type=float, default=0.4, help="kill replica 0 after this share of answers")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--lease", type=float, default=15.0, help="INTERVIEW_CLAIM_LEASE of the replicas")
    ap.add_argument("--sweep-every", type=float, default=3.0, help="INTERVIEW_SWEEP_EVERY of the replicas")
    ap.add_argument("--timeout", type=float, default=180.0, help="how long a person waits for the next question")
    ap.add_argument("--compare", action="store_true", help="first the same run with one replica, no kill")
    ap.add_argument("--transcripts", type=float, default=0.2,
                    help="share of people who share a practice transcript after their interview")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "load.json")
    args = ap.parse_args()
    found = bindir()
    if found is None:
        sys.exit(MISSING)
    runs = []
    root = Path(tempfile.mkdtemp(prefix="load-"))
    chroma = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    chroma_url = f"http://127.0.0.1:{free_port()}"
    with running(found) as server, served([chroma, "run", "--path", str(root / "chroma"), "--host", "127.0.0.1",
                                           "--port", chroma_url.rsplit(":", 1)[1]],
                                          f"{chroma_url}/api/v2/heartbeat", root / "chroma.log", timeout=60):
        if args.compare:
            runs.append(run(args, 1, False, server, root, chroma_url))
            print(json.dumps(runs[-1]), flush=True)
        runs.append(run(args, args.replicas, not args.no_kill and args.replicas > 1, server, root, chroma_url))
        print(json.dumps(runs[-1]), flush=True)
    out = {"command": "python " + " ".join(sys.argv), "cpus": os.cpu_count(), "runs": runs,
           "logs": str(root)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\n{'replicas':>8} {'killed':>6} {'sent':>5} {'graded':>6} {'lost':>4} {'twice':>5} "
          f"{'p50 s':>6} {'p95 s':>6} {'grades/s':>8} {'transcripts':>11}")
    for r in runs:
        print(f"{r['replicas']:>8} {str(r['killed_replica_0']):>6} {r['answers_submitted']:>5} {r['answers_graded']:>6} "
              f"{r['answers_lost']:>4} {r['graded_twice']:>5} {r['latency_p50_s']!s:>6} {r['latency_p95_s']!s:>6} "
              f"{r['throughput_grades_per_s']:>8} {r['transcripts_reported']:>5}/{r['transcripts_shared']:<5}")
    print(f"written to {args.out}; replica logs in {root}")


if __name__ == "__main__":
    main()
