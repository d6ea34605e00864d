"""Every table of the history database, in one ordered list of migration steps (bot.db.Database
.migrate applies the ones above the stored version, in one transaction, on both engines).

To add a table or a column, append a step; never edit one that has shipped: a database that
applied it would not apply it again. Step 1 is the schema as first shipped; a SQLite database of
that version says 0 (PRAGMA user_version) and gets step 1's CREATE ... IF NOT EXISTS as a no-op. A
database written by an older version opens and is upgraded; one written by a newer version is
refused with a clear message rather than damaged.

What copies a table's rows (export, import) takes its columns from `columns()`, read from these
steps, so a new column cannot be left out of a copy.
"""
from __future__ import annotations

import re

from bot.db import POSTGRESQL, SQLITE

MIGRATIONS: dict[int, list] = {
    1: ["""CREATE TABLE IF NOT EXISTS sessions (
            id {pk},
            owner TEXT NOT NULL,
            channel TEXT NOT NULL,          -- terminal | slack | ...
            topic TEXT,
            question_ids TEXT NOT NULL,     -- JSON list, the planned questions in order
            position INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'active',   -- active | finished | stopped
            meta TEXT NOT NULL DEFAULT '{}',  -- the face's own data (e.g. Slack channel and thread)
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS answers (
            id {pk},
            session_id INTEGER REFERENCES sessions(id),
            position INTEGER,
            question_id TEXT NOT NULL,
            question TEXT NOT NULL,
            answer TEXT NOT NULL,
            content_hash TEXT NOT NULL,     -- question + answer: re-grading the same text is served from here
            status TEXT NOT NULL,           -- pending | graded | error | skipped
            grade TEXT,                     -- the Grade as JSON
            overall {real},
            error TEXT,
            model TEXT,
            source TEXT NOT NULL DEFAULT 'session',
            created_at TEXT NOT NULL,
            graded_at TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS answers_by_hash ON answers(content_hash, status)",
        "CREATE INDEX IF NOT EXISTS answers_by_session ON answers(session_id, position)"],
    2: ["ALTER TABLE answers ADD COLUMN grading_version TEXT",
        {SQLITE: "UPDATE answers SET grading_version = json_extract(grade, '$.grading_version') "
                 "WHERE grade IS NOT NULL",
         POSTGRESQL: "UPDATE answers SET grading_version = CAST(grade AS jsonb) ->> 'grading_version' "
                     "WHERE grade IS NOT NULL"},
        "CREATE INDEX IF NOT EXISTS answers_by_hash_version ON answers(content_hash, status, grading_version)"],
    # bot.coach: one spaced-repetition card (fsrs) per person and item, updated after each grade.
    3: ["""CREATE TABLE IF NOT EXISTS cards (
            owner TEXT NOT NULL,
            item_id TEXT NOT NULL,
            card TEXT NOT NULL,           -- fsrs Card.to_json()
            due TEXT NOT NULL,            -- ISO time, UTC (copied out of the card for queries)
            reviews INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (owner, item_id))""",
        "CREATE INDEX IF NOT EXISTS cards_due ON cards(owner, due)"],
    # Replicas (several `interview slack --http` over one PostgreSQL): which process is grading a
    # pending answer, and since when. A claim older than the lease belongs to a dead process.
    4: ["ALTER TABLE answers ADD COLUMN claimed_by TEXT",
        "ALTER TABLE answers ADD COLUMN claimed_at TEXT",
        "CREATE INDEX IF NOT EXISTS answers_by_status ON answers(status, claimed_at)"],
    # The key points a follow-up answer is graded against (JSON: points, by), kept with the answer
    # so that another replica can grade it when the one that saved it died.
    5: ["ALTER TABLE answers ADD COLUMN follow_up TEXT"],
    # A face's thread (meta THREAD_KEY) copied into an indexed column: the Slack app looks up the
    # session of every threaded message before its 3-second ack, which read every session's meta.
    6: ["ALTER TABLE sessions ADD COLUMN thread TEXT",
        {SQLITE: "UPDATE sessions SET thread = json_extract(meta, '$.thread_ts')",
         POSTGRESQL: "UPDATE sessions SET thread = CAST(meta AS jsonb) ->> 'thread_ts'"},
        "CREATE INDEX IF NOT EXISTS sessions_by_thread ON sessions(thread)"],
    # The Slack app's tables (bot.slack.core), created until now by the app itself when it started:
    # IF NOT EXISTS, so a database where it ran keeps them and their rows.
    7: [  # event ids already handled: a delivery Slack retries (or another replica receives) is handled once
        """CREATE TABLE IF NOT EXISTS slack_events (
            event_id TEXT PRIMARY KEY,
            seen_at TEXT NOT NULL
        )""",
        # who asked for the weekly review reminder, and when it was last sent
        """CREATE TABLE IF NOT EXISTS slack_reminders (
            user_id TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL,
            last_sent TEXT
        )""",
        # which message of a session is being handled, across replicas
        """CREATE TABLE IF NOT EXISTS slack_turns (
            session_id INTEGER PRIMARY KEY,
            holder TEXT NOT NULL,
            taken_at TEXT NOT NULL
        )"""],
}
SCHEMA_VERSION = max(MIGRATIONS)

_CONSTRAINTS = {"PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT"}


def _statements():
    for n in sorted(MIGRATIONS):
        for statement in MIGRATIONS[n]:
            yield statement[SQLITE] if isinstance(statement, dict) else statement


def columns(table: str) -> tuple[str, ...]:
    """The columns of `table` once every step is applied, in the order they were added."""
    out: list[str] = []
    for statement in _statements():
        sql = re.sub(r"--[^\n]*", "", statement)
        created = re.match(rf"\s*CREATE TABLE (?:IF NOT EXISTS )?{table}\s*\((.*)\)\s*$", sql, re.S | re.I)
        added = re.match(rf"\s*ALTER TABLE {table} ADD COLUMN (\w+)", sql, re.I)
        if created:
            depth, part, parts = 0, "", []
            for ch in created.group(1) + ",":
                depth += (ch == "(") - (ch == ")")
                if ch == "," and depth == 0:
                    parts.append(part.strip())
                    part = ""
                else:
                    part += ch
            out += [p.split()[0] for p in parts if p and p.split()[0].upper() not in _CONSTRAINTS]
        elif added:
            out.append(added.group(1))
    if not out:
        raise KeyError(f"no table {table} in bot.schema.MIGRATIONS")
    return tuple(out)
