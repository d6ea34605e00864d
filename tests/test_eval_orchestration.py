"""The evaluation's orchestration as core calls (bot/evaluation/fitting.py, evaluate.py and the
drafting part of keypoints.py), through the real functions: what `interview eval`, `interview
calibrate` and `interview corpus keypoints` do between parsing their options and printing."""
from __future__ import annotations

import json
import random

import pytest

from bot.errors import NotFoundError, UsageError
from bot.evaluation import calibration, datasets, evaluate, fitting, keypoints
from bot.evaluation.runner import OK, RunDir

# --- the dev-only rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(datasets.BUILTIN))
def test_a_builtin_set_is_fitted_on_dev_only(name):
    fitting.require_dev(name, "dev")
    for split in ("test", "all"):  # `all` of a built-in set holds its test rows
        with pytest.raises(UsageError) as e:
            fitting.require_dev(name, split)
        assert e.value.message == (f"`{name} --split {split}` is on the {split} split; "
                                   "a calibration is fitted on dev rows only.")
        assert e.value.hint == f"Run `interview eval {name} --split dev --limit 120` and fit on that."
        assert e.value.exit_code == 2


def test_your_own_file_is_refused_on_test_only():
    """A file without a split column has only `all`: it holds no test rows of ours."""
    fitting.require_dev("mine", "all")
    fitting.require_dev("mine", "dev")
    with pytest.raises(UsageError, match="dev rows only"):
        fitting.require_dev("mine", "test")


def test_the_refusal_names_the_run_folder_when_there_is_one():
    with pytest.raises(UsageError) as e:
        fitting.require_dev("ads", "test", "runs/ads-test")
    assert e.value.message.startswith("runs/ads-test is on the test split")


# --- fitting the score entry ---------------------------------------------------------------------

def _run(n: int, *, dataset: str = "mine", split: str = "dev", run_dir: str = "runs/a", seed: int = 1) -> fitting.Run:
    """n graded rows whose human score (0-5) follows `coverage`, and one failed row (never fitted on)."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        q = rng.random()
        f = {k: rng.random() for k in calibration.FEATURES} | {"coverage": q, "not_stopped": 1.0}
        records.append({"row_id": f"r{i}", "question_id": "q", "status": OK, "human": round(q * 5),
                        "overall": q * 10, "features": f})
    records.append({"row_id": "bad", "question_id": "q", "status": "failed", "human": 5, "error": "boom"})
    meta = {"dataset": dataset, "split": split, "model": "none", "prompt_version": "p", "limit": None,
            "scale_max": 5.0, "step": 1.0, "run_dir": run_dir}
    return fitting.Run(meta, records)


def test_a_fit_refuses_too_few_graded_rows_and_writes_nothing(tmp_path):
    out = tmp_path / "weights.json"
    with pytest.raises(UsageError) as e:
        fitting.fit_scores([_run(calibration.MIN_ROWS - 1)], output=out)
    assert e.value.message == (f"Only {calibration.MIN_ROWS - 1} graded dev rows; "
                               f"a fit needs at least {calibration.MIN_ROWS}.")
    assert "larger dev evaluation" in e.value.hint
    assert not out.exists()
    fitting.fit_scores([_run(calibration.MIN_ROWS)], output=out)  # the failed row is not counted, but enough now
    assert out.is_file()


def test_a_fit_refuses_a_test_run_among_dev_runs_before_writing(tmp_path):
    out = tmp_path / "weights.json"
    with pytest.raises(UsageError) as e:
        fitting.fit_scores([_run(40), _run(40, split="test", run_dir="runs/t")], output=out)
    assert e.value.message.startswith("runs/t is on the test split")
    assert not out.exists()


def test_a_fit_saves_an_entry_named_after_the_data_set_with_its_in_sample_metrics(tmp_path):
    out = tmp_path / "weights.json"
    fitted = fitting.fit_scores([_run(60)], output=out)
    assert (fitted.name, fitted.output) == ("mine", out)
    entry = calibration.load("mine", out)
    assert entry.weights == fitted.entry.weights and entry.weights["coverage"] > 0
    assert entry.fitted_on == [{"dataset": "mine", "split": "dev", "rows": 60, "model": "none",
                                "prompt_version": "p", "limit": None, "run": "runs/a"}]
    assert set(fitted.entry.dev_metrics) == {"mine-dev"}
    assert set(fitted.entry.dev_metrics["mine-dev"]) == {"raw", "calibrated"}
    both = fitting.fit_scores([_run(30), _run(30, dataset="other", seed=2)], output=out)
    assert both.name == "default" and set(json.loads(out.read_text())["entries"]) == {"mine", "default"}


def test_a_fit_without_a_signal_and_with_kept_weights(tmp_path):
    out = tmp_path / "weights.json"
    with pytest.raises(UsageError) as e:
        fitting.fit_scores([_run(40)], output=out, drop=["bogus", "coverage"])
    assert e.value.message == "--drop bogus: no such signal."
    assert "coverage" not in fitting.fit_scores([_run(40)], output=out, name="nocov", drop=["coverage"]).entry.weights
    with pytest.raises(UsageError, match="--keep-weights nope: no such entry in"):
        fitting.fit_scores([_run(40)], output=out, keep_weights="nope")
    first = fitting.fit_scores([_run(40)], output=out, name="first")
    kept = fitting.fit_scores([_run(40, seed=3)], output=out, name="kept", keep_weights="first")
    assert kept.entry.weights == {k: v for k, v in first.entry.weights.items() if v > 0}


def test_read_runs_adds_the_folder_and_keeps_the_latest_line_of_a_row(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.begin({"dataset": "mine", "split": "dev"}, restart=False)
    rd.append({"row_id": "r1", "status": "failed"})
    rd.append({"row_id": "r1", "status": OK})
    [run] = fitting.read_runs([rd.path])
    assert run.meta["run_dir"] == str(rd.path) and run.records == [{"row_id": "r1", "status": OK}]
    with pytest.raises(NotFoundError, match="is not a run folder"):
        fitting.read_runs([rd.path, tmp_path / "nothing"])


def test_verdicts_are_fitted_on_dev_runs_with_labelled_key_points_only(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"question_id": "q1", "question": "q?", "reference": "r.", "answer": "a", "score": 1}) + "\n",
                    encoding="utf-8")
    with pytest.raises(UsageError, match="dev rows only"):
        fitting.fit_verdicts([_run(5, dataset="corpus", split="test")], output=tmp_path / "w.json")
    run = fitting.Run({"dataset": str(path), "split": "all", "model": "none"}, [])
    with pytest.raises(UsageError) as e:  # a file's rows carry no key-point labels
        fitting.fit_verdicts([run], output=tmp_path / "w.json")
    assert e.value.message == "Only 0 labelled key points in those runs."
    assert not (tmp_path / "w.json").exists()


# --- one evaluation ------------------------------------------------------------------------------

def _table(tmp_path, n_questions: int = 2):
    path = tmp_path / "mine.jsonl"
    lines = []
    for q in range(n_questions):
        ref = f"Topic {q} is about caching. A cache keeps recent results. It trades memory for speed."
        for k, (ans, score) in enumerate([(ref, 5), ("A cache keeps recent results.", 3), ("no idea", 0)]):
            lines.append({"question_id": f"q{q}", "question": f"What is topic {q}?", "reference": ref,
                          "answer": ans, "score": score, "split": "dev" if k < 2 else "test"})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_a_sample_for_a_fit_is_refused_off_dev_before_anything_is_graded(tmp_path):
    path = _table(tmp_path)
    with pytest.raises(UsageError, match="dev rows only"):
        evaluate.sample(str(path), "test", columns="split=split", for_fit=True)
    s = evaluate.sample(str(path), "dev", columns="split=split", for_fit=True, limit=100)
    assert len(s.rows) == 4 and s.limit is None  # a limit above the split's size is none
    assert evaluate.sample(str(path), "dev", columns="split=split", limit=2).limit == 2


def test_an_evaluation_without_a_model_grades_reports_and_reassesses(tmp_path):
    sample = evaluate.sample(str(_table(tmp_path)), "dev", columns="split=split")
    plan = evaluate.plan(sample, None, tmp_path / "home", no_model=True, out_dir=tmp_path / "run")
    assert plan.drafter is None and plan.config["model"] == "none"
    assert plan.config["key_points"] == "reference sentences" and plan.config["run_dir"] == str(tmp_path / "run")
    with pytest.raises(NotFoundError, match="holds no run to reassess"):
        evaluate.reassess(plan, model_free=True)
    graded = evaluate.grade(plan)
    assert [r["row_id"] for r in graded.records] == [r.id for r in sample.rows]
    assert evaluate.graded_so_far(plan.run_dir) == 4
    written = evaluate.write_report(plan, graded, "none")
    assert written.note == "" and written.report["graded"] == 4
    assert {p.name for p in written.paths.values()} == {"report.json", "report.md", "report.html"}
    again = evaluate.reassess(plan, model_free=True)
    assert [r.id for r in again.rows] == [r.id for r in sample.rows]
    assert [r["overall"] for r in again.records] == [r["overall"] for r in graded.records]


def test_the_default_run_folder_names_the_sample(tmp_path):
    sample = evaluate.sample(str(_table(tmp_path)), "dev", columns="split=split", limit=3, seed=7)
    d = evaluate.default_run_dir(tmp_path, sample.dataset, sample.limit, sample.seed, "Some Model")
    assert d.name == "mine-dev-n3-s7-some-model"


# --- drafting key points -------------------------------------------------------------------------

def test_draft_items_of_a_data_set_are_one_per_question(tmp_path):
    meta, items = keypoints.draft_items(str(_table(tmp_path, 3)))
    assert meta["name"] == "mine-keypoints" and [i.id for i in items] == ["mine-q0", "mine-q1", "mine-q2"]
    assert all(i.key_points == [] and i.tags == ["mine"] for i in items)
    with pytest.raises(UsageError, match="give one corpus .md file"):
        keypoints.draft_items(str(tmp_path))


def test_draft_items_of_a_corpus_file_keep_their_own_key_points(tmp_path):
    md = tmp_path / "pack.md"
    md.write_text("---\nname: pack\nlanguage: en\ndomain: cs\n---\n\n"
                  + keypoints.render_item("p-1", "Q one?", "Answer one.", ["a point", "b point", "c point"],
                                          tags=["t"], difficulty="hard", note="careful")
                  + "\n" + keypoints.render_item("p-2", "Q two?", "Answer two.", []), encoding="utf-8")
    meta, items = keypoints.draft_items(str(md))
    assert meta["name"] == "pack"
    assert [(i.id, i.key_points, i.tags, i.difficulty, i.note) for i in items] == [
        ("p-1", ["a point", "b point", "c point"], ["t"], "hard", "careful"), ("p-2", [], [], "medium", "")]
    assert keypoints.render_draft(items[0], items[0].key_points) == keypoints.render_item(
        "p-1", "Q one?", "Answer one.", ["a point", "b point", "c point"], tags=["t"], difficulty="hard", note="careful")


def test_a_drafted_item_escapes_reference_lines_that_would_start_a_heading():
    item = keypoints.DraftItem("x-1", "Q?", "# not a heading\nplain", [], ["x"])
    text = keypoints.render_draft(item, ["one", "two", "three"])
    assert "\\# not a heading\nplain" in text and text.startswith("## x-1: Q?\n")


def test_reviewed_key_points_must_name_the_data_set_questions(tmp_path):
    ds = datasets.load(str(_table(tmp_path)), columns=datasets.parse_columns("split=split"))
    md = tmp_path / "kp.md"
    md.write_text("---\nname: kp\nlanguage: en\ndomain: cs\n---\n\n" + keypoints.render_item(
        "other-q0", "What is topic 0?", "Ref.", ["one point", "two points", "three points"]), encoding="utf-8")
    with pytest.raises(UsageError) as e:
        keypoints.reviewed_key_points(md, ds)
    assert "mine-" in e.value.hint
    md.write_text(md.read_text(encoding="utf-8").replace("other-q0", "mine-q0"), encoding="utf-8")
    assert keypoints.reviewed_key_points(md, ds) == {"q0": ["one point", "two points", "three points"]}
