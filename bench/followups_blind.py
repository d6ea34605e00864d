"""Blind read of the follow-ups (issue #27 target: the point a follow-up aims at is guessable in
>= 70 % and given away in <= 10 %).

Makes 26 cases, two items of each pack (seed 27): one of an item's first three key points is
missed, the others covered, and the follow-up is the one the embedded model's sessions ask (the
template on the point's aspect, `followups.plain`). A reader who sees only the question and the
follow-up writes what they think the interviewer wants said, and whether the follow-up already
says it; a second person compares each guess with the hidden point.

    python bench/followups_blind.py --sheet DIR     # DIR/reader.md for the reader, DIR/key.json kept apart
    python bench/followups_blind.py --summary FILE  # FILE: the key with "guess", "given_away", "guessed"
                                                    # filled in per case; prints and writes the rates
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace

from common import ROOT, write

sys.path.insert(0, str(ROOT))


def cases(seed: int = 27) -> list[dict]:
    from bot import followups
    from bot.cli import common
    from bot.grading.question import Question

    items = common.load_items(common.settings())
    packs: dict[str, list] = {}
    for it in items:
        packs.setdefault(it.corpus, []).append(it)
    rng = random.Random(seed)
    out = []
    for pack in sorted(packs):
        for it in rng.sample(packs[pack], 2):
            q = Question.from_item(it)
            i = rng.randrange(min(followups.IMPORTANT, len(q.key_points)))
            points = [SimpleNamespace(status="covered", evidence="") for _ in q.key_points]
            points[i].status = "missing"
            grade = SimpleNamespace(key_points=points, answer="")
            out.append({"case": len(out) + 1, "item": it.id, "language": q.language, "question": q.question,
                        "follow_up": followups.plain(q, grade, q.language, i), "point": q.key_points[i],
                        "aspect": followups.aspect_of(q, i, q.language)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sheet", type=Path)
    ap.add_argument("--summary", type=Path)
    a = ap.parse_args()
    if a.sheet:
        a.sheet.mkdir(parents=True, exist_ok=True)
        made = cases()
        (a.sheet / "reader.md").write_text("".join(
            f"## Case {c['case']}\nQuestion: {c['question']}\nFollow-up asked by the interviewer: {c['follow_up']}\n\n"
            for c in made), encoding="utf-8")
        (a.sheet / "key.json").write_text(json.dumps(made, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"{len(made)} cases: {a.sheet / 'reader.md'} for the reader, {a.sheet / 'key.json'} kept apart")
    if a.summary:
        read = json.loads(a.summary.read_text(encoding="utf-8"))
        n = len(read)
        write("followups_blind", {
            "cases": n, "guessable": round(sum(bool(c["guessed"]) for c in read) / n, 3),
            "given_away": round(sum(bool(c["given_away"]) for c in read) / n, 3),
            "without_aspect": sum(not c["aspect"] for c in read), "read": read})


if __name__ == "__main__":
    main()
