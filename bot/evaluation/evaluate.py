"""One `interview eval`: the sample of a data set, what its rows are graded against, the run
(graded, or reassessed from what the model said), and the report written into the run folder.

The face (bot/cli/eval_cmd.py) parses the options, builds the LLM, shows the progress and prints;
the steps in between are these functions, in this order:
    sample() -> plan(sample, llm, ...) -> grade(plan, ...) or reassess(plan, ...) -> write_report(...)
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.config import REPO_ROOT
from bot.errors import NotFoundError, UsageError
from bot.evaluation import calibration, datasets, keypoints, report, runner, sampling, verdict_fit
from bot.evaluation.datasets import Dataset, Row
from bot.evaluation.fitting import require_dev
from bot.grading.grader import Grader

# (rows done, rows in all, the record just written or None at the start)
Progress = Callable[[int, int, dict | None], None]


def default_run_dir(home: Path, ds: Dataset, limit: int | None, seed: int, model: str) -> Path:
    """bench/results/eval/<data set>-<split>-n<limit>-s<seed>-<model> in a checkout (so real runs
    can be committed and refitted by anyone), else under the data dir (`home`)."""
    base = REPO_ROOT / "bench" / "results" / "eval" if (REPO_ROOT / "bench").is_dir() else home / "eval"
    return base / datasets.slug(f"{ds.name}-{ds.split}-{'n' + str(limit) if limit else 'all'}-s{seed}-{model}")


@dataclass
class Sample:
    dataset: Dataset
    rows: list[Row]  # the rows to grade, in grading order (question by question)
    limit: int | None  # None: every row of the split (a --limit at or above its size is none)
    seed: int


def sample(dataset: str, split: str | None = None, *, columns: str | None = None, scale_max: float | None = None,
           language: str | None = None, limit: int | None = None, seed: int = 0, for_fit: bool = False) -> Sample:
    """The data set (a built-in name or a file; `columns` as `--columns` spells it) and its seeded
    sample of `limit` rows, stratified by question and score. `for_fit`: the run will be fitted on,
    so a split other than dev is refused before anything is graded."""
    ds = datasets.load(dataset, split, columns=datasets.parse_columns(columns), scale_max=scale_max,
                       language=language)
    if for_fit:
        require_dev(ds.name, ds.split)
    rows = sampling.stratified_sample(ds.rows, limit, seed, ds.scale_max)
    limit = limit if limit and limit < len(ds.rows) else None  # a limit above the split size is no limit
    if not rows:
        raise UsageError(f"{ds.path}: no rows in split {ds.split}.")
    return Sample(ds, rows, limit, seed)


@dataclass
class Plan:
    sample: Sample
    grader: Grader
    drafter: keypoints.KeyPointDrafter | None  # None without a model: the reference's sentences
    questions: runner.RowQuestions
    run_dir: Path
    config: dict  # the run's meta.json (less `created`); also what a fit records it was fitted on

    @property
    def drafts(self) -> dict:
        """How the key points were drafted (for the report): drafted, cached, fallback."""
        return dict(self.drafter.stats) if self.drafter else {}


def key_point_source(sample: Sample, llm, *, no_model: bool, key_points: Path | None) -> str:
    """Where the key points come from, as the run's identity records it (another source is another run)."""
    if key_points:
        return f"reviewed {key_points.name} {hashlib.sha256(key_points.read_bytes()).hexdigest()[:8]}"
    if sample.dataset.rows[0].key_points:
        return "curated (corpus)"
    return "reference sentences" if no_model else f"drafted by {llm.name} ({keypoints.prompt_version()})"


def plan(sample: Sample, llm, home: Path, *, no_model: bool, key_points: Path | None = None,
         out_dir: Path | None = None) -> Plan:
    """The grader over `llm` (None: without a model), what each row is graded against (its own key
    points, else the reviewed ones in `key_points`, else drafted, cached under `home`), and the
    run folder (`out_dir`, else default_run_dir) with the configuration that identifies the run."""
    ds = sample.dataset
    grader = runner.grader_for(llm)
    llm = grader.llm
    drafter = keypoints.KeyPointDrafter(llm, home / "keypoints") if not no_model else None
    reviewed = keypoints.reviewed_key_points(key_points, ds) if key_points else {}
    kp_source = key_point_source(sample, llm, no_model=no_model, key_points=key_points)
    questions = runner.RowQuestions(reviewed, drafter.draft if drafter is not None else None)
    run_dir = out_dir or default_run_dir(home, ds, sample.limit, sample.seed, llm.name)
    config = {"dataset": ds.name, "path": str(ds.path), "split": ds.split, "limit": sample.limit, "seed": sample.seed,
              "rows_sha": runner.rows_sha(sample.rows), "rows": len(sample.rows), "model": llm.name,
              "prompt_version": runner.prompt_version(), "key_points": kp_source,
              "scale_max": ds.scale_max, "step": ds.step, "run_dir": str(run_dir)}
    return Plan(sample, grader, drafter, questions, run_dir, config)


@dataclass
class Graded:
    records: list[dict]  # one result per row
    rows: list[Row]  # the data set's rows those are of


def grade(plan: Plan, progress: Progress | None = None, *, restart: bool = False) -> Graded:
    """Grade every row of the sample without a result in the run folder (resumes; `restart`: start over)."""
    records = runner.Runner(plan.grader, plan.run_dir, plan.questions.for_row, progress=progress).run(
        plan.sample.rows, plan.config, restart=restart)
    return Graded(records, plan.sample.rows)


def reassess(plan: Plan, *, model_free: bool) -> Graded:
    """Recompute the run's stored grades without a model call, on the run's own rows (whatever
    sample --limit would draw today)."""
    if runner.RunDir(plan.run_dir).meta() is None:
        raise NotFoundError(f"{plan.run_dir} holds no run to reassess.", "Run the evaluation first.")
    ds = plan.sample.dataset
    records = runner.reassess(plan.run_dir, ds.rows, plan.questions.stored, "model_free" if model_free else "default")
    ids = {x["row_id"] for x in records}
    return Graded(records, [r for r in ds.rows if r.id in ids])


def graded_so_far(run_dir: Path) -> int:
    """Rows with a saved grade in the run folder (what an interrupted run keeps)."""
    return len([r for r in runner.RunDir(run_dir).latest().values() if r.get("status") == runner.OK])


@dataclass
class Written:
    report: dict  # report.json's content
    paths: dict[str, Path]  # the files written
    note: str  # why no calibration was applied, if none was ("" otherwise)


def write_report(plan: Plan, graded: Graded, calibration_choice: str = "auto") -> Written:
    """The report of the run, with the calibration `calibration_choice` names (auto: the weights
    file's entry for the data set, none, or a JSON file), written into the run folder."""
    ds = plan.sample.dataset
    ok = [r for r in graded.records if r.get("status") == runner.OK]
    present = set().union(*[set(r.get("features") or {}) for r in ok] or [set()])
    cal, note = calibration.choose(calibration_choice, ds.name, present)
    rep = report.build(ds.describe(), plan.config, graded.records, cal, note, plan.drafts, plan.run_dir,
                       key_point_verdicts=verdict_fit.metrics(graded.rows, graded.records))
    return Written(rep, report.write(rep, plan.run_dir), note)
