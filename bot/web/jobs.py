"""Slow work of the web face (gradings, follow-ups, transcript scoring) in background threads, so a
request answers at once and the page follows the work's stages over server-sent events.

One job per key (an answer's id): a second request for the same answer (a reload, a second tab)
joins the job in flight instead of grading the answer twice."""
from __future__ import annotations

import asyncio
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from bot.errors import InterviewError

WAITING, RUNNING, DONE, FAILED = "waiting", "running", "done", "failed"


def _settle(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Job:
    def __init__(self, key: str, seq: int, session_id: int | None):
        self.key, self.seq, self.session_id = key, seq, session_id
        self.state = WAITING
        self.stage = "saved · waiting for the grader…"
        self.version = 0  # bumped on every change: what an event stream waits on
        self.result = None
        self.error: tuple[str, str | None] | None = None
        self.preview = None  # the grade before the model's corrections (when the service gives one)
        self.started = time.monotonic()
        self.ended: float | None = None
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []  # event streams

    def _bump(self, **fields) -> None:
        with self._lock:
            for k, v in fields.items():
                setattr(self, k, v)
            self.version += 1
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_settle, fut)
            except RuntimeError:  # that stream's loop has closed (the server is stopping)
                pass

    def say(self, stage: str) -> None:
        """The service's stage callback ("loading the model…", "grading…")."""
        self._bump(stage=stage, state=RUNNING if stage.startswith("grading") else self.state)

    def show_early(self, grade) -> None:
        """The service's preview callback: the grade's score and key points are known; the model
        still looks for wrong claims."""
        self._bump(preview=grade, stage="grading… the score is in; the model is looking for wrong claims to correct")

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED)

    async def changed(self, version: int, timeout: float) -> None:
        """Wait in the event loop, without a thread, until the job changes past `version` (or
        `timeout`): an event stream learns of a stage at once, instead of polling for it."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            if self.version != version:
                return
            self._waiters.append((loop, fut))
        try:
            await asyncio.wait({fut}, timeout=timeout)
        finally:
            with self._lock:
                if (loop, fut) in self._waiters:
                    self._waiters.remove((loop, fut))


class Jobs:
    def __init__(self, workers: int = 32):
        # Enough threads that every waiting grading stands in the service's gate (which keeps
        # arrival order), not in this pool's queue.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="web-job")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._seq = itertools.count()

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def run(self, key: str, work: Callable[[Job], object], session_id: int | None = None) -> tuple[Job, bool]:
        """The job for `key`: the one in flight, else a new one running `work(job)`. The bool says
        whether this call started it."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.finished:
                return job, False
            job = self._jobs[key] = Job(key, next(self._seq), session_id)
        self._pool.submit(self._run, job, work)
        return job, True

    def _run(self, job: Job, work) -> None:
        try:
            result = work(job)
        except InterviewError as e:
            job._bump(state=FAILED, error=(e.message, e.hint), ended=time.monotonic())
            return
        except Exception as e:  # noqa: BLE001 - a bug reaches the page as a message, the log keeps it
            import logging

            logging.getLogger(__name__).exception("web job %s failed", job.key)
            job._bump(state=FAILED, error=(f"Internal error: {type(e).__name__}: {e}",
                                           "This is a bug; the server's log has the traceback."),
                      ended=time.monotonic())
            return
        job._bump(state=DONE, result=result, stage="done", ended=time.monotonic())

    def busy(self, session_id: int) -> list[Job]:
        """Jobs of a session still running."""
        with self._lock:
            return [j for j in self._jobs.values() if j.session_id == session_id and not j.finished]

    def ahead(self, job: Job) -> int:
        """Gradings that came in before this one and are not finished: where it stands in the queue."""
        if job.state != WAITING:
            return 0
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.seq < job.seq and not j.finished
                       and j.key.startswith("answer:"))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
