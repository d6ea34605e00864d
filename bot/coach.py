"""The coach: what a person knows, per item and per key point, from the grades the history keeps;
when to ask an item again (one fsrs card per person and item); which questions a session asks.

A grade becomes an fsrs rating (RATING_CUTS); a key point missed in the last two attempts of an item
makes its rating Again, so the item comes back soon. Sessions mix due items with unseen ones,
unseen ones from the person's weakest topics first.
"""
from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.errors import ConflictError
from bot.schema import columns
from bot.sessions import GRADED, SessionEngine

# overall (0-10) -> fsrs rating: below 4 Again, below 6.5 Hard, below 8.5 Good, else Easy.
RATING_CUTS = ((4.0, 1), (6.5, 2), (8.5, 3), (10.01, 4))
MISSED_TWICE = 2  # a key point missed in this many latest attempts pulls the item back (Again)
MODES = ("mix", "review", "new")
CARD_TRIES = 20  # a card written by another grading meanwhile is read and reviewed again, this often at most
INSERT_CARD = ("INSERT INTO cards(owner, item_id, card, due, reviews, updated_at) "
               "VALUES (:owner, :item_id, :card, :due, :reviews, :updated_at)")
# What an export carries and an import writes: the tables' columns (bot.schema) but the ids, which
# are each database's own, and a replica's claim, which is about a process of this database.
LOCAL_COLUMNS = {"id", "session_id", "claimed_by", "claimed_at"}
SESSION_COLUMNS = tuple(c for c in columns("sessions") if c not in LOCAL_COLUMNS)
ANSWER_COLUMNS = tuple(c for c in columns("answers") if c not in LOCAL_COLUMNS)


def _utc(ts: str | datetime | None = None) -> datetime:
    if ts is None:
        return datetime.now(timezone.utc)
    if isinstance(ts, datetime):
        return ts.astimezone(timezone.utc)
    return datetime.fromisoformat(ts).astimezone(timezone.utc)


def _card_id(owner: str, item_id: str) -> int:
    import hashlib

    return int(hashlib.sha256(f"{owner}\x00{item_id}".encode()).hexdigest()[:12], 16)


def topic_means(scores, items: dict) -> dict[str, tuple[float, int]]:
    """What a topic's score is, wherever one is shown or used: the mean of the scores of answers
    to its items (an item counts for each of its tags), and how many answers it is the mean of.
    `scores`: (item id, score) pairs."""
    by_tag: dict[str, list[float]] = defaultdict(list)
    for item_id, score in scores:
        item = items.get(item_id)
        for tag in (item.tags if item else []):
            by_tag[tag].append(score)
    return {t: (sum(v) / len(v), len(v)) for t, v in by_tag.items()}


def rating_for(overall: float) -> int:
    return next(r for cut, r in RATING_CUTS if overall < cut)


@dataclass
class Attempt:
    """One graded answer to an item, as the coach reads it."""
    item_id: str
    session_id: int | None
    when: str
    overall: float
    points: list[tuple[str, str]]  # (key point, covered | partial | missing)


class Coach:
    def __init__(self, engine: SessionEngine, *, retention: float = 0.9):
        import fsrs

        self.engine = engine
        self.store = engine.store
        # No fuzz: a schedule a person (and a test) can predict; learning steps as fsrs defaults.
        self.scheduler = fsrs.Scheduler(desired_retention=retention, enable_fuzzing=False)

    # --- what the history says ------------------------------------------------------------
    def attempts(self, owner: str, item_id: str | None = None) -> list[Attempt]:
        """Every graded session answer of `owner` (to `item_id` only, when given), oldest first."""
        only = " AND a.question_id=:item_id" if item_id else ""
        with self.store.connect() as db:
            rows = db.execute(
                "SELECT a.question_id, a.session_id, COALESCE(a.graded_at, a.created_at) AS t, a.overall, a.grade "
                "FROM answers a JOIN sessions s ON s.id = a.session_id "
                f"WHERE s.owner=:owner AND a.status=:status{only} ORDER BY t, a.id",
                owner=owner, status=GRADED, item_id=item_id).all()
        out = []
        for r in rows:
            g = json.loads(r["grade"] or "{}")
            points = [(kp.get("point", ""), kp.get("status", "")) for kp in g.get("key_points", [])]
            out.append(Attempt(r["question_id"], r["session_id"], r["t"], float(r["overall"] or 0.0), points))
        return out

    def record(self, owner: str, item_id: str, overall: float, when: str | datetime | None = None) -> dict:
        """Update the person's card for the item after a grade; returns the card as stored.

        Compare-and-set: the reviewed card is written only over the card it was computed from, else
        read again and reviewed again. Two gradings of one person's item at once (two replicas, or
        two Slack threads) each count; read and written in two transactions, one was lost."""
        import fsrs

        now = _utc(when)
        rating = self._rating(owner, item_id, overall)
        for _ in range(CARD_TRIES):
            with self.store.connect() as db:
                row = db.execute("SELECT card FROM cards WHERE owner=:owner AND item_id=:item_id",
                                 owner=owner, item_id=item_id).first()
            seen = row["card"] if row else None
            card = fsrs.Card.from_json(seen) if seen else fsrs.Card(card_id=_card_id(owner, item_id), due=now)
            card, _ = self.scheduler.review_card(card, fsrs.Rating(rating), review_datetime=now)
            due = _utc(card.due).isoformat(timespec="seconds")
            if self._replace_card(owner, item_id, seen, card.to_json(), due, now):
                return {"item_id": item_id, "rating": rating, "due": due}
        raise ConflictError(f"The card of {owner} for {item_id} kept changing while it was updated "
                            f"({CARD_TRIES} tries).", "Grade the answer again; it is saved.")

    def _rating(self, owner: str, item_id: str, overall: float) -> int:
        rating = rating_for(overall)
        recent = self.attempts(owner, item_id)[-MISSED_TWICE:]  # not the whole history, on every grade
        if len(recent) >= MISSED_TWICE:
            missed = [{p for p, st in a.points if st in ("missing", "contradicted")} for a in recent]
            if set.intersection(*missed):
                rating = 1  # the same key point missed twice in a row: ask again soon
        return rating

    def _replace_card(self, owner: str, item_id: str, seen: str | None, card: str, due: str, now: datetime) -> bool:
        """Store `card` if the stored one is still `seen` (None: there was none). False when another
        grading wrote the card first."""
        values = {"owner": owner, "item_id": item_id, "card": card, "due": due,
                  "updated_at": now.isoformat(timespec="seconds")}
        with self.store.connect() as db:
            if seen is None:
                return db.execute(f"{INSERT_CARD} ON CONFLICT(owner, item_id) DO NOTHING", values,
                                  reviews=1).rowcount == 1
            return db.execute("UPDATE cards SET card=:card, due=:due, reviews=reviews+1, updated_at=:updated_at "
                              "WHERE owner=:owner AND item_id=:item_id AND card=:seen", values,
                              seen=seen).rowcount == 1

    def cards(self, owner: str) -> dict[str, dict]:
        with self.store.connect() as db:
            rows = db.execute("SELECT item_id, due, reviews FROM cards WHERE owner=:owner", owner=owner).all()
        return {r["item_id"]: {"due": r["due"], "reviews": r["reviews"]} for r in rows}

    def due(self, owner: str, now: str | datetime | None = None) -> list[tuple[str, str]]:
        """(item id, due time) of the items due now, most overdue first."""
        now = _utc(now)
        return sorted(((i, c["due"]) for i, c in self.cards(owner).items()
                       if _utc(c["due"]) <= now and i in self.engine.items), key=lambda x: x[1])

    def upcoming(self, owner: str, now: str | datetime | None = None, limit: int = 10) -> list[dict]:
        """The next items to come due (not due yet), soonest first."""
        now = _utc(now)
        return [{"item_id": i, "due": d} for d, i in sorted((c["due"], i) for i, c in self.cards(owner).items()
                                                             if i in self.engine.items and _utc(c["due"]) > now)][:limit]

    def topic_scores(self, owner: str) -> dict[str, float]:
        """Mean latest score per tag."""
        latest: dict[str, float] = {}
        for a in self.attempts(owner):
            latest[a.item_id] = a.overall
        return {t: mean for t, (mean, _) in topic_means(latest.items(), self.engine.items).items()}

    # --- what to ask ------------------------------------------------------------------------
    def plan(self, owner: str, pool: list, count: int, mode: str = "mix", *, now=None,
             seed: int | None = None) -> list:
        """The items of a session from `pool`: due ones first (most overdue), then unseen ones from
        the weakest topics, then seen ones due soonest (`mix`); only due (`review`); only unseen (`new`)."""
        if mode not in MODES:
            raise ValueError(mode)
        cards = self.cards(owner)
        if mode == "mix" and not cards:  # no history yet: a plain draw, as before the coach
            from bot.corpus import select_questions

            return select_questions(pool, None, count, seed)
        ids = {it.id for it in pool}
        due = [self.engine.items[i] for i, _ in self.due(owner, now) if i in ids]
        seen = set(cards)
        weak = self.topic_scores(owner)
        rng = random.Random(seed)
        unseen = [it for it in pool if it.id not in seen]
        rng.shuffle(unseen)
        # unseen items of weak topics first (a topic never practised counts as average: 6)
        unseen.sort(key=lambda it: min([weak.get(t, 6.0) for t in it.tags] or [6.0]))
        if mode == "review":
            return due[:count]
        if mode == "new":
            return unseen[:count]
        # then the seen ones due soonest: a session is never short while the pool has items
        taken = {it.id for it in due}
        later = [self.engine.items[i] for i, c in sorted(cards.items(), key=lambda x: x[1]["due"])
                 if i in ids and i not in taken]
        return (due + unseen + later)[:count]

    # --- history and progress ---------------------------------------------------------------
    def history(self, owner: str, limit: int = 50) -> list[dict]:
        out = []
        for s in self.engine.list_sessions(owner, limit=limit):
            summary = self.engine.summary(s)
            out.append({"session": s.id, "date": s.created_at, "channel": s.channel, "status": s.status,
                        "topic": s.topic, "questions": summary["questions"], "answered": summary["answered"],
                        "graded": summary["graded"], "mean": summary["mean"],
                        "items": [{"id": i["question_id"], "overall": i["overall"], "status": i["status"]}
                                  for i in summary["items"]]})
        return out

    def home_stats(self, owner: str, limit: int = 10) -> dict:
        """The numbers of a face's home (Slack's App Home): recent sessions, mean per session over
        time, weakest topics, what is due. Session answers only, not follow-ups: the mean of a
        session is of its questions."""
        sessions = self.engine.list_sessions(owner, limit=200)
        rows, trend, scores = [], [], []
        for s in sessions:
            summary = self.engine.summary(s)
            scores += [(a.question_id, a.grade.overall) for a in self.engine.answers(s) if a.status == GRADED and a.grade]
            date = s.created_at[:10]
            if summary["mean"] is not None:
                trend.append((date, summary["mean"]))
            if len(rows) < limit:
                rows.append({"id": s.id, "date": date, "topic": s.topic, "status": s.status,
                             "mean": summary["mean"], "answered": summary["answered"],
                             "questions": summary["questions"]})
        weakest = sorted(((t, round(mean, 1), n) for t, (mean, n) in topic_means(scores, self.engine.items).items()),
                         key=lambda x: (x[1], -x[2]))[:3]
        due = self.due(owner)
        upcoming = self.upcoming(owner, limit=1)
        return {
            "due": len(due),
            "next_due": upcoming[0]["due"][:16].replace("T", " ") if upcoming and not due else None,
            "sessions": rows,
            "trend": list(reversed(trend))[-20:],  # oldest first
            "average": round(sum(x for _, x in scores) / len(scores), 1) if scores else None,
            "graded": len(scores),
            "weakest": weakest,
        }

    def progress(self, owner: str, now=None) -> dict:
        now = _utc(now)
        attempts = self.attempts(owner)
        by_topic: dict[str, list[dict]] = defaultdict(list)
        missed: Counter = Counter()
        last_try: dict[tuple[str, str], str] = {}
        for a in attempts:
            item = self.engine.items.get(a.item_id)
            for tag in (item.tags if item else []):
                by_topic[tag].append({"date": a.when[:10], "overall": a.overall})
            for point, st in a.points:
                if st in ("missing", "contradicted"):
                    missed[(a.item_id, point)] += 1
                last_try[(a.item_id, point)] = st
        means = topic_means(((a.item_id, a.overall) for a in attempts), self.engine.items)
        cards = self.cards(owner)
        practised = {datetime.fromisoformat(a.when).date() for a in attempts}
        day = now.date() if now.date() in practised else now.date() - timedelta(days=1)
        streak = 0  # consecutive days with an answer, up to today (or yesterday: today may not have begun)
        while day in practised:
            streak, day = streak + 1, day - timedelta(days=1)
        return {
            "owner": owner, "answers": len(attempts), "items_seen": len(cards),
            "topics": {t: {"answers": means[t][1], "mean": round(means[t][0], 1), "trend": v[-10:]}
                       for t, v in sorted(by_topic.items())},
            "most_missed": [{"item_id": i, "point": p, "missed": n, "latest": last_try[(i, p)]}
                            for (i, p), n in missed.most_common(10)],
            "due_now": [i for i, _ in self.due(owner, now)],
            "due_next": self.upcoming(owner, now),
            "streak_days": streak,
        }


# --- moving a history between machines ------------------------------------------------------

def export_lines(store, owner: str) -> list[dict]:
    """One record per session (with its answers) and per card, in the order they were made."""
    out = [{"kind": "interview-bot-history", "version": 1, "owner": owner}]
    with store.connect() as db:  # one transaction: a consistent picture while others write
        for s in db.execute("SELECT * FROM sessions WHERE owner=:owner ORDER BY id", owner=owner).all():
            answers = [{c: a[c] for c in ANSWER_COLUMNS}
                       for a in db.execute("SELECT * FROM answers WHERE session_id=:id ORDER BY position, id", id=s["id"])]
            out.append({"kind": "session", **{c: s[c] for c in SESSION_COLUMNS}, "answers": answers})
        for c in db.execute("SELECT * FROM cards WHERE owner=:owner ORDER BY item_id", owner=owner):
            out.append({"kind": "card", **dict(c)})
    return out


def import_lines(store, path, owner: str | None = None) -> tuple[int, int]:
    """Add the sessions and cards of an export; a session already here (same owner, start time and
    questions) is skipped, so importing twice changes nothing. One transaction: all or nothing."""
    from pathlib import Path

    from bot.errors import UsageError

    records = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UsageError(f"{path}:{n}: not valid JSON ({e.msg}).", "Import a file written by `interview export`.") from None
    if not records or records[0].get("kind") != "interview-bot-history":
        raise UsageError(f"{path}:1: not an interview-bot history export.", "Write one with `interview export`.")
    who = owner or records[0]["owner"]
    added = skipped = 0
    # The owner's write lock: two imports of the same file at once cannot both find a session missing.
    with store.connect(lock=f"import {who}") as db:
        for n, r in enumerate(records[1:], 2):
            if r.get("kind") == "session":
                if db.execute("SELECT 1 FROM sessions WHERE owner=:owner AND created_at=:created_at "
                              "AND question_ids=:question_ids", owner=who, created_at=r["created_at"],
                              question_ids=r["question_ids"]).first():
                    skipped += 1
                    continue
                row = {c: who if c == "owner" else r.get(c) for c in SESSION_COLUMNS}
                session_id = db.insert(f"INSERT INTO sessions({', '.join(row)}) VALUES ({_binds(row)})", row)
                for a in r.get("answers", []):
                    answer = {k: v for k, v in a.items() if k not in ("id", "session_id")}
                    unknown = set(answer) - set(ANSWER_COLUMNS)  # column names go into the SQL: only known ones
                    if unknown:
                        raise UsageError(f"{path}:{n}: an answer has fields this version does not know: "
                                         f"{', '.join(sorted(unknown))}.", "Upgrade interview-bot, then import again.")
                    answer["session_id"] = session_id
                    db.execute(f"INSERT INTO answers({', '.join(answer)}) VALUES ({_binds(answer)})", answer)
                added += 1
            elif r.get("kind") == "card":
                db.execute(f"{INSERT_CARD} ON CONFLICT(owner, item_id) DO UPDATE SET card=excluded.card, "
                           "due=excluded.due, reviews=excluded.reviews, updated_at=excluded.updated_at "
                           "WHERE excluded.updated_at > cards.updated_at",
                           owner=who, item_id=r["item_id"], card=r["card"], due=r["due"], reviews=r["reviews"],
                           updated_at=r["updated_at"])
    return added, skipped


def _binds(row: dict) -> str:
    return ", ".join(f":{k}" for k in row)
