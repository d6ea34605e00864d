"""The coach over a real database (a SQLite file, and a real PostgreSQL server): a simulated learner across sessions (scripted answers that
state some key points and keep omitting others; the fake LLM only at the model's edge)."""
import json
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.coach import Coach
from bot.grading.grader import Grader
from bot.llm.fake import FakeLLM
from bot.service import InterviewService
from bot.sessions import SessionEngine, Store
from bot.grading.result import Grade

REPLY = {"missing_points": [], "wrong_claims": [], "score": 4}


def service(settings, items):
    llm = FakeLLM()
    llm.queue(*[REPLY] * 50)
    return InterviewService(SessionEngine(Store(settings.database_url), items, decode=Grade.from_dict), grader=Grader(llm))


def answer(svc, session, item, keep: int | None = None):
    """Answer the current question with its first `keep` key points (all when None), graded."""
    assert svc.current_item(session).id == item.id
    rec = svc.reply(svc.session(session.id), "；".join(item.key_points[:keep]) + "。")
    return svc.grade(rec)


def test_a_learner_is_asked_again_what_they_keep_missing_and_progress_shows_it(history, settings, corpus_items):
    svc = service(settings, corpus_items)
    s1 = svc.start("ann", mode="mix", count=3, seed=7)
    a, b, c = (svc.engine.items[i] for i in s1.question_ids)
    strong, weak = answer(svc, s1, a), answer(svc, s1, b, keep=1)
    answer(svc, s1, c)
    assert strong.overall > weak.overall + 2
    coach = svc.coach
    cards = coach.cards("ann")
    assert set(cards) == {a.id, b.id, c.id} and cards[b.id]["due"] <= min(cards[a.id]["due"], cards[c.id]["due"])

    later = datetime.now(timezone.utc) + timedelta(days=2)
    plan = coach.plan("ann", list(svc.engine.items.values()), 5, "review", now=later)
    assert plan[0].id == b.id  # the weak item comes back first
    # A second session, as the coach plans it: due items first. The same key points missed again.
    s2 = svc.engine.start("ann", chosen=[b, a])
    answer(svc, s2, b, keep=1)
    answer(svc, s2, a)
    cards2 = coach.cards("ann")
    assert cards2[b.id]["reviews"] == 2 and cards2[b.id]["due"] < cards2[a.id]["due"]

    p = coach.progress("ann")
    missed = {(m["item_id"], m["point"]): m["missed"] for m in p["most_missed"]}
    # the points the grade called missing, in both attempts at b (the coach reads the grade's statuses)
    gone = [k.point for k in weak.key_points if k.status == "missing"]
    assert gone and all(missed[(b.id, p)] == 2 for p in gone) and not any(i == a.id for i, _ in missed)
    assert p["answers"] == 5 and p["streak_days"] == 1 and p["items_seen"] == 3
    assert any(len(t["trend"]) >= 2 for t in p["topics"].values())
    new_only = coach.plan("ann", list(svc.engine.items.values()), 30, "new", seed=1)
    assert not {a.id, b.id, c.id} & {i.id for i in new_only} and len(new_only) == len(corpus_items) - 3

    # A restart: a new process over the same file knows the same.
    again = Coach(SessionEngine(Store(history.url), corpus_items, decode=Grade.from_dict))
    assert again.cards("ann") == cards2 and again.progress("ann")["most_missed"] == p["most_missed"]
    assert [h["session"] for h in again.history("ann")] == [s2.id, s1.id]


def coach_over(url: str, items) -> Coach:
    """A coach as one replica (or process) has it: its own connection to the history."""
    return Coach(SessionEngine(Store(url), items, decode=Grade.from_dict))


def stored_card(coach: Coach, owner: str, item_id: str) -> tuple:
    with coach.store.connect() as db:
        row = db.execute("SELECT card, due, reviews FROM cards WHERE owner=:owner AND item_id=:item_id",
                         owner=owner, item_id=item_id).first()
    return row["card"], row["due"], row["reviews"]


@pytest.mark.parametrize("earlier", [True, False], ids=["card", "no-card-yet"])
def test_two_gradings_of_one_persons_item_at_once_both_reach_the_card(history, corpus_items, earlier):
    """Replica A has read the card and is working out its review when replica B grades the same
    person's item and stores its review: A's write must build on B's, as if one came after the other."""
    item, then, now = corpus_items[0].id, "2030-01-01T09:00:00+00:00", "2030-01-03T09:00:00+00:00"
    a, b = coach_over(history.url, corpus_items), coach_over(history.url, corpus_items)
    if earlier:
        a.record("ann", item, 9.0, when=then)
    review = a.scheduler.review_card

    def b_grades_meanwhile(card, rating, **kw):
        a.scheduler.review_card = review  # once: A's own review goes on as usual
        b.record("ann", item, 3.0, when=now)
        return review(card, rating, **kw)

    a.scheduler.review_card = b_grades_meanwhile
    a.record("ann", item, 7.0, when=now)

    one_by_one = coach_over(history.another(), corpus_items)
    for overall, when in ([(9.0, then)] if earlier else []) + [(3.0, now), (7.0, now)]:
        one_by_one.record("ann", item, overall, when=when)
    assert stored_card(a, "ann", item) == stored_card(one_by_one, "ann", item)
    assert stored_card(a, "ann", item)[2] == (3 if earlier else 2)


def test_history_progress_export_and_import_on_the_command_line(history, settings, corpus_items, tmp_path,
                                                               monkeypatch):
    from tests.conftest import MAIN_CORPUS

    monkeypatch.setenv("INTERVIEW_CORPUS", str(MAIN_CORPUS))
    svc = service(settings, corpus_items)
    s = svc.start("bob", mode="mix", count=2, seed=3)
    for iid in s.question_ids:
        answer(svc, s, svc.engine.items[iid], keep=2)
    runner = CliRunner()
    h = runner.invoke(app, ["history", "--profile", "bob", "--json"])
    assert h.exit_code == 0, h.output
    (row,) = json.loads(h.stdout)["sessions"]
    assert row["graded"] == 2 and [i["id"] for i in row["items"]] == s.question_ids
    page = tmp_path / "progress.html"
    pr = runner.invoke(app, ["progress", "--profile", "bob", "--json", "--html", str(page)])
    assert pr.exit_code == 0, pr.output
    assert json.loads(pr.stdout)["answers"] == 2
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "<script" not in text and "http" not in text.split("<body>")[1]
    dump = tmp_path / "bob.jsonl"
    assert runner.invoke(app, ["export", "--profile", "bob", "--out", str(dump)]).exit_code == 0
    monkeypatch.setenv("INTERVIEW_HOME", str(tmp_path / "other-machine"))
    monkeypatch.setenv("INTERVIEW_DATABASE_URL", history.another())
    first = runner.invoke(app, ["import", str(dump)])
    assert first.exit_code == 0 and "Imported 1 session(s); 0 already here" in first.stdout, first.output
    assert "Imported 0 session(s); 1 already here" in runner.invoke(app, ["import", str(dump)]).stdout
    moved = json.loads(runner.invoke(app, ["history", "--profile", "bob", "--json"]).stdout)["sessions"]
    assert [(r["graded"], r["mean"]) for r in moved] == [(row["graded"], row["mean"])]
    due = json.loads(runner.invoke(app, ["progress", "--profile", "bob", "--json"]).stdout)
    assert due["items_seen"] == 2  # the review schedule moved too
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "something else"}\n', encoding="utf-8")
    res = runner.invoke(app, ["import", str(bad)])
    assert res.exit_code == 2 and "not an interview-bot history export" in res.output


def _chromium() -> str | None:
    import shutil

    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_progress_page_renders_in_headless_chromium(settings, corpus_items, tmp_path, monkeypatch):
    """The progress HTML in a real browser: a screenshot with content, the charts in the rendered
    DOM, and no console error. .ci/run installs Debian's chromium; without it this test is skipped."""
    import os
    import subprocess
    import tempfile

    import pytest

    from tests.conftest import MAIN_CORPUS

    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    monkeypatch.setenv("INTERVIEW_CORPUS", str(MAIN_CORPUS))
    svc = service(settings, corpus_items)
    for n in range(3):  # three sessions: a trend
        s = svc.start("dee", mode="mix", count=2, seed=n)
        for iid in s.question_ids:
            answer(svc, s, svc.engine.items[iid], keep=1 + n)
    page = tmp_path / "progress.html"
    assert CliRunner().invoke(app, ["progress", "--profile", "dee", "--html", str(page)]).exit_code == 0
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}"]
        dom = subprocess.run([*flags, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120, check=True)
        subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1100,1400", page.as_uri()],
                       capture_output=True, timeout=120, check=True)
    assert dom.stdout.count("<svg") >= 1 and ("<polyline" in dom.stdout or "<path" in dom.stdout or "<rect" in dom.stdout)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, len(data)  # a blank page is a few KB
    if os.environ.get("PROGRESS_SCREENSHOT"):
        Path(os.environ["PROGRESS_SCREENSHOT"]).write_bytes(data)
