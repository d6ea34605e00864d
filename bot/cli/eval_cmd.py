"""`interview eval` (grader vs human graders), `interview calibrate` and `interview corpus keypoints`.

The face only: options in, progress and results out. What the commands do is bot/evaluation
(evaluate: one evaluation; fitting: the dev-only fits; keypoints: drafting key points).

Exit codes: 0 ok; 1 an error (e.g. the LLM backend failed on many rows in a row: graded rows are
kept); 2 bad options or a bad data set file; 130 interrupted (rerun the same command to resume).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli import common
from bot.cli.common import err, handle_errors, out
from bot.errors import UsageError

if TYPE_CHECKING:
    from bot.evaluation.fitting import ScoreFit


def _print_fit(fitted: ScoreFit) -> None:
    from rich.table import Table

    cal, name, output = fitted.entry, fitted.name, fitted.output
    t = Table("run", "", "Pearson", "QWK", "RMSE", "MAE", title=f"calibration `{name}` (in-sample, dev)")
    for run, kinds in cal.dev_metrics.items():
        for kind, m in kinds.items():
            t.add_row(run, kind, *[("–" if m[k] is None else f"{m[k]:.3f}") for k in ("pearson", "qwk", "rmse", "mae")])
    err.print(t)
    err.print("weights: " + ", ".join(f"{k} {v:.3f}" for k, v in cal.weights.items() if v), highlight=False)
    err.print(f"[dim]wrote {output} (entry {name!r})[/]", highlight=False)


def _print_summary(rep: dict, paths: dict) -> None:
    from rich.table import Table

    from bot.evaluation.report import METRIC_ROWS, metric_cell, summary_lines, title

    out.print(f"[bold]{title(rep)}[/]")
    for line in summary_lines(rep):
        out.print(line, highlight=False, markup=False)
    cal = rep["primary"] == "calibrated"
    t = Table("metric", "predicted", *(["raw overall"] if cal else []))
    for key, label in METRIC_ROWS:
        t.add_row(label, metric_cell(key, rep["metrics"][key]),
                  *([metric_cell(key, rep["raw_metrics"][key])] if cal else []))
    out.print(t)
    c = Table("human \\ predicted", "low", "mid", "high", title="confusion by band")
    for band, row in zip(("low", "mid", "high"), rep["metrics"]["confusion"]):
        c.add_row(band, *map(str, row))
    out.print(c)
    err.print("[dim]wrote " + ", ".join(str(p) for p in paths.values()) + "[/]", highlight=False)


@handle_errors
def eval(dataset: str = typer.Argument(..., help="ads, mohler, or a .jsonl/.csv file of graded answers."),
         split: str = typer.Option(None, "--split", help="dev, test or all (default: test for ads/mohler, all for a file)."),
         limit: int = typer.Option(None, "--limit", "-n", help="Grade a sample of N rows, stratified by question and score."),
         seed: int = typer.Option(0, "--seed", help="Seed of the --limit sample."),
         as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
         out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: bench/results/eval/<run>)."),
         columns: str = typer.Option(None, "--columns",
                                     help="Your file's columns: question=COL,reference=COL[+COL],answer=COL,score=COL"
                                          "[,question_id=COL,split=COL,skip=COL,id=COL]."),
         scale_max: float = typer.Option(None, "--scale-max", help="Top of your file's human scale (default: guessed)."),
         language: str = typer.Option(None, "--language", help="zh or en for your file (default: detected)."),
         key_points: Path = typer.Option(None, "--key-points",
                                         help="Reviewed key points (a file from `interview corpus keypoints`)."),
         calibration: str = typer.Option("auto", "--calibration", help="auto (the repo's file), none, or a JSON file."),
         fit: bool = typer.Option(False, "--fit", help="After a dev run, fit the calibration on it and save it."),
         fit_output: Path = typer.Option(None, "--fit-output", help="Where --fit writes (default: bot/grading/weights.json)."),
         restart: bool = typer.Option(False, "--restart", help="Discard the results in the run folder and start over."),
         no_model: bool = typer.Option(False, "--no-model",
                                       help="Grade with the model-free signals only (fast: full splits in minutes)."),
         reassess: bool = typer.Option(False, "--reassess",
                                       help="Recompute the run's stored grades (verdicts, signals, weights) without a model call.")):
    """Grade a human-graded data set and report agreement with the human scores."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from bot.evaluation import evaluate, fitting

    s = common.settings()
    sample = evaluate.sample(dataset, split, columns=columns, scale_max=scale_max, language=language, limit=limit,
                             seed=seed, for_fit=fit)
    ds, rows = sample.dataset, sample.rows
    no_model = no_model or s.backend == "none"
    llm = None if no_model else common.llm(s)
    plan = evaluate.plan(sample, llm, s.home, no_model=no_model, key_points=key_points, out_dir=out_dir)
    columns_ = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns_, console=err) as bar:
        task = bar.add_task(f"grading {ds.name} {ds.split}", total=len(rows))

        def progress(done: int, total: int, rec: dict | None) -> None:
            desc = f"grading {ds.name} {ds.split}"
            if rec is not None:
                desc += f" · {rec['question_id']} · " + (f"{rec['overall']:.1f}/10" if rec["status"] == "ok" else "failed")
            bar.update(task, completed=done, description=desc)

        try:
            graded = (evaluate.reassess(plan, model_free=no_model) if reassess
                      else evaluate.grade(plan, progress, restart=restart))
        except KeyboardInterrupt:
            bar.stop()
            err.print(f"\nInterrupted: {evaluate.graded_so_far(plan.run_dir)} of {len(rows)} rows are graded and "
                      f"saved in {plan.run_dir}. Run the same command again to resume.", soft_wrap=True)
            raise typer.Exit(130)
    written = evaluate.write_report(plan, graded, calibration)
    if written.note:
        err.print(f"[yellow]{written.note}[/]", highlight=False)
    if as_json:
        print(json.dumps(written.report, ensure_ascii=False, indent=2))
    else:
        _print_summary(written.report, written.paths)
    if fit:
        _print_fit(fitting.fit_scores([fitting.Run(plan.config, graded.records)], output=fit_output))


@handle_errors
def calibrate(run_dirs: list[Path] = typer.Argument(..., help="Folders of dev runs of `interview eval`."),
              name: str = typer.Option(None, "--name", help="Entry name (default: the data set's, or `default` for several)."),
              drop: list[str] = typer.Option(None, "--drop", help="Fit without this signal (repeatable), e.g. factual."),
              keep_weights: str = typer.Option(None, "--keep-weights",
                                               help="Keep this entry's weights (e.g. default); fit only the map to the scale."),
              verdicts: bool = typer.Option(False, "--verdicts",
                                            help="Fit the key-point verdicts on runs of our labelled set (corpus or behavioural, dev)."),
              output: Path = typer.Option(None, "--output", help="Weights file (default: bot/grading/weights.json).")):
    """Fit the grade's learned numbers on dev runs; one command reproduces the file in the repo."""
    from bot.evaluation import fitting

    runs = fitting.read_runs(run_dirs)
    if verdicts:
        fitted = fitting.fit_verdicts(runs, output=output)
        err.print(f"key-point verdicts ({fitted.mode}) fitted on {fitted.points} labelled points: {fitted.params}",
                  highlight=False)
        err.print("[dim]Statuses change: rerun `interview eval ... --reassess` before fitting scores.[/]")
        return
    _print_fit(fitting.fit_scores(runs, output=output, name=name, drop=drop or [], keep_weights=keep_weights))


@handle_errors
def keypoints(path: str = typer.Argument(..., help="A corpus .md file, or a data set (ads, mohler, .jsonl/.csv)."),
              redraft: bool = typer.Option(False, "--redraft", help="Also redraft items that have key points."),
              out_path: Path = typer.Option(None, "--out", "-o", help="Write the Markdown here instead of stdout."),
              columns: str = typer.Option(None, "--columns", help="For a .jsonl/.csv file: as in `interview eval`.")):
    """Draft key points from reference answers with the LLM; print them as corpus Markdown to review."""
    from bot.evaluation.keypoints import KeyPointDrafter, draft_items, render_draft, render_front_matter

    s = common.settings()
    meta, todo = draft_items(path, columns)
    llm = common.llm(s)
    if llm is None:
        raise UsageError("Drafting key points needs a model, and INTERVIEW_LLM_BACKEND is none.",
                         "Unset INTERVIEW_LLM_BACKEND (the embedded model) or point it at an endpoint.")
    drafter = KeyPointDrafter(llm, s.home / "keypoints")
    parts = [render_front_matter(meta)]
    with err.status("drafting key points…", spinner="dots") as status:
        for n, item in enumerate(todo, 1):
            points = item.key_points
            if redraft or not points:
                status.update(f"drafting key points {n}/{len(todo)}: {item.id}")
                points = drafter.draft(item.question, item.answer)
            parts.append("\n" + render_draft(item, points))
    text = "".join(parts)
    if out_path:
        try:
            out_path.write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"Could not write {out_path}: {e.strerror}.", "Pick a writable --out path.") from None
        err.print(f"[dim]wrote {out_path}[/]", highlight=False)
    else:
        print(text, end="")
    st = drafter.stats
    err.print(f"[dim]{len(todo)} item(s): {st['drafted']} drafted, {st['cached']} from the cache, "
              f"{st['fallback']} fell back to the reference's sentences. Review them before use.[/]", highlight=False)

