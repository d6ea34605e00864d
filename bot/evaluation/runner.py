"""Runs the grader over data set rows and keeps every result on disk as it goes.

A run lives in a folder: `meta.json` (what is being run: data set, split, sample, model, prompt)
and `results.jsonl` (one line per graded row, appended and fsynced before the next row starts).
Running the same command again resumes: rows with a result are skipped; rows that failed are
tried again (the latest line of a row wins). A line cut off by a crash is dropped on resume.
A run folder holding another configuration is refused, not mixed (use --restart or another --out).

Rows are graded question by question (the sample is already ordered so): the grader's prompt
prefix (question, reference, key points) stays in the local model's cache between answers.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bot.corpus import language_of
from bot.errors import InterviewError, UsageError
from bot.evaluation.calibration import features
from bot.grading import prompt as _prompt
from bot.grading.grader import Grader
from bot.grading.question import Question, reference_points

RESULTS, META = "results.jsonl", "meta.json"
OK, FAILED = "ok", "failed"
# Keys of meta.json that must match for a run to resume (rows_sha pins the sample, so the data set
# may sit in another folder on another machine); the rest is informational.
IDENTITY = ("dataset", "split", "limit", "seed", "rows_sha", "model", "prompt_version", "key_points")


def grader_for(llm) -> Grader:
    """The product's grader over `llm` (None: without a model), as an evaluation grades with it."""
    return Grader(llm)


def prompt_version() -> str:
    return _prompt.prompt_version()


class RowQuestions:
    """What a data set's row is graded against: its question, reference and key points (the
    row's own, else `reviewed` ones, else drafted by `draft`, else the reference's sentences), in
    the reference's language. One Question per question id, built once."""

    def __init__(self, reviewed: dict[str, list[str]], draft: Callable[[str, str], list[str]] | None = None):
        self.reviewed, self.draft = reviewed, draft
        self._built: dict[str, Question] = {}

    def for_row(self, row) -> Question:
        if row.question_id not in self._built:
            points = (row.key_points or self.reviewed.get(row.question_id)
                      or (reference_points(row.reference) if self.draft is None else self.draft(row.question, row.reference)))
            self._built[row.question_id] = self._question(row, points)
        return self._built[row.question_id]

    def stored(self, row, stored: dict) -> Question:
        """For a reassessment: the key points the stored grade was made against where the row has none."""
        points = row.key_points or [k["point"] for k in stored.get("key_points", [])] or self.for_row(row).key_points
        return self._question(row, points)

    @staticmethod
    def _question(row, points: list[str]) -> Question:
        return Question(row.question_id, row.question, row.reference, points, language_of(row.reference),
                        translations=dict(row.translations or {}), structural=row.structural,
                        references=dict(row.references or {}))


def rows_sha(rows) -> str:
    return hashlib.sha256("\n".join(r.id for r in rows).encode("utf-8")).hexdigest()[:16]


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.results = self.path / RESULTS
        self.meta_path = self.path / META

    def meta(self) -> dict | None:
        try:
            return json.loads(self.meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            raise UsageError(f"{self.meta_path} is damaged (not JSON).",
                             "Delete the run folder, or rerun with --restart.") from None

    def records(self, *, repair: bool = False) -> list[dict]:
        """Every complete line; with `repair`, a cut-off last line is removed from the file."""
        try:
            data = self.results.read_bytes()
        except FileNotFoundError:
            return []
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            if repair:
                with open(self.results, "r+b") as f:
                    f.truncate(cut)
            data = data[:cut]
        out = []
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise UsageError(f"{self.results}:{lineno}: not a JSON line.",
                                     "Delete that line (it will be graded again) or rerun with --restart.") from None
        return out

    def latest(self) -> dict[str, dict]:
        return {r["row_id"]: r for r in self.records()}

    def begin(self, config: dict, *, restart: bool) -> dict[str, dict]:
        """Write or check meta.json; return the results to keep (row id -> record)."""
        self.path.mkdir(parents=True, exist_ok=True)
        old = self.meta()
        if old is not None and not restart:
            diff = [k for k in IDENTITY if old.get(k) != config.get(k)]
            if diff:
                raise UsageError(
                    f"{self.path} holds another run ({', '.join(f'{k}: {old.get(k)!r} vs {config.get(k)!r}' for k in diff)}).",
                    "Rerun with --restart to replace it, or pick another --out folder.")
            self.records(repair=True)
            return self.latest()
        if restart and self.results.exists():
            self.results.unlink()
        config = dict(config, created=datetime.now(UTC).isoformat(timespec="seconds"))
        self.meta_path.write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return {}

    def append(self, record: dict) -> None:
        with open(self.results, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the next 20 s of grading starts


def _compact(grade) -> dict:
    d = grade.to_dict()
    for k in ("question", "answer", "reference_answer", "feedback"):
        d.pop(k, None)  # the data set holds these; the run file stays small enough to commit
    return d


class Runner:
    def __init__(self, grader: Grader, run_dir: Path, question_for: Callable[[object], Question], *,
                 progress: Callable[[int, int, dict | None], None] | None = None,
                 max_consecutive_failures: int = 5):
        self.grader = grader
        self.dir = RunDir(run_dir)
        self.question_for = question_for
        self.progress = progress or (lambda done, total, rec: None)
        self.max_consecutive_failures = max_consecutive_failures

    def run(self, rows: list, config: dict, *, restart: bool = False) -> list[dict]:
        """Grade every row without an `ok` result; return one record per row, in row order."""
        done = {k: v for k, v in self.dir.begin(config, restart=restart).items() if v.get("status") == OK}
        total, processed = len(rows), sum(r.id in done for r in rows)
        self.progress(processed, total, None)
        failures_in_row = 0
        for row in rows:
            if row.id in done:
                continue
            rec = self._grade(row)
            self.dir.append(rec)
            done[row.id] = rec
            processed += 1
            self.progress(processed, total, rec)
            failures_in_row = failures_in_row + 1 if rec["status"] == FAILED else 0
            if failures_in_row >= self.max_consecutive_failures:
                raise InterviewError(
                    f"{failures_in_row} answers in a row could not be graded; the last error: {rec['error']}",
                    f"Check the LLM backend, then rerun the same command: graded rows in {self.dir.path} are kept.")
        return [done[r.id] for r in rows]

    def _grade(self, row) -> dict:
        base = {"row_id": row.id, "question_id": row.question_id, "human": row.human,
                "model": self.grader.llm.name}
        start = time.monotonic()
        try:
            q = self.question_for(row)  # may draft key points (first row of a question), not timed
            start = time.monotonic()
            grade = self.grader.grade(q, row.answer)
        except Exception as e:  # noqa: BLE001 - one bad row is a measured failure, not the end of the run
            msg = e.message if isinstance(e, InterviewError) else f"{type(e).__name__}: {e}"
            return {**base, "status": FAILED, "error": msg[:500],
                    "latency_ms": int((time.monotonic() - start) * 1000)}
        return {**base, "status": OK, "overall": grade.overall, "features": features(grade),
                "flags": list(grade.flags), "latency_ms": int((time.monotonic() - start) * 1000),
                "prompt_version": grade.prompt_version, "grade": _compact(grade)}


def reassess(run_dir: Path, rows: list, question_for: Callable[[object, dict], Question], entry: str) -> list[dict]:
    """Recompute every graded row of a run from what its model observed (stored on the grade):
    new verdicts, signals and weights without a model call. Every stored line is kept (a row the
    data set no longer has stays as it was); results.jsonl is replaced atomically."""
    from bot.grading.grader import regrade
    from bot.grading.result import Grade

    rd = RunDir(run_dir)
    by_id = {r.id: r for r in rows}
    stored = list(rd.latest().values())
    if stored and not any(r["row_id"] in by_id for r in stored):
        raise UsageError(f"None of the rows in {run_dir} is in this data set and split.",
                         "Reassess a run with the data set and --split it was run on.")
    out = []
    for rec in stored:
        row = by_id.get(rec["row_id"])
        if row is not None and rec.get("status") == OK and rec.get("grade", {}).get("model") != "prechecks":
            g = Grade.from_dict({**rec["grade"], "question": row.question, "answer": row.answer,
                                 "reference_answer": row.reference})
            q = question_for(row, rec["grade"])
            g = regrade(g, q, row.answer, entry)
            rec = {**rec, "overall": g.overall, "features": features(g), "grade": _compact(g)}
        out.append(rec)
    tmp = rd.results.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    os.replace(tmp, rd.results)
    return out
