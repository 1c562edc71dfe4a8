"""The audit database schema as forward-only migrations.

Every table is append-only: triggers abort any UPDATE or DELETE, so neither a bug nor a
stray tool using the app's API can rewrite history (someone with the file can still edit
it, which the sha256 of each artifact and the record JSON make detectable).

A run leaves two rows: ``run_starts`` when it begins (so a crash leaves a visible
interrupted run) and ``runs`` with the final record, inserted with its artifacts in one
transaction when it ends. No row is ever updated, so "finished" is a join, not a flag.

Version 2 closes the holes an attacker with the file found in version 1: ``INSERT OR REPLACE``
deletes the old row without firing DELETE triggers, so BEFORE INSERT triggers refuse a row
whose key exists (``run_starts`` ignores it, keeping its ``INSERT OR IGNORE`` semantics);
``schema_version`` rows can no longer be changed or re-inserted; and the ``chain`` table
(:mod:`app.audit.chain`) links every finished run and override to the one before it.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Callable

from . import chain

# (version, script). Append new versions; never edit a released one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE run_starts (
            run_id        TEXT PRIMARY KEY,
            created       TEXT NOT NULL,
            study_uid     TEXT NOT NULL DEFAULT '',
            series_uid    TEXT NOT NULL DEFAULT '',
            slice_index   INTEGER NOT NULL DEFAULT 0,
            question      TEXT NOT NULL,
            mode          TEXT NOT NULL DEFAULT '',
            profile       TEXT NOT NULL DEFAULT '',
            parent_run_id TEXT,
            -- identifying fields as they were at the time of the run (PatientInfo as JSON);
            -- kept out of record_json so a de-identified export simply leaves them behind
            patient_json  TEXT NOT NULL DEFAULT '{}',
            host          TEXT NOT NULL DEFAULT '',
            pid           INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX run_starts_study ON run_starts(study_uid, created);
        CREATE INDEX run_starts_created ON run_starts(created);

        CREATE TABLE runs (
            run_id        TEXT PRIMARY KEY REFERENCES run_starts(run_id),
            finished      TEXT NOT NULL,
            status        TEXT NOT NULL,
            final_answer  TEXT NOT NULL DEFAULT '',
            record_json   TEXT NOT NULL,
            record_sha256 TEXT NOT NULL
        );

        CREATE TABLE artifacts (
            run_id  TEXT NOT NULL REFERENCES runs(run_id),
            name    TEXT NOT NULL,
            kind    TEXT NOT NULL CHECK (kind IN ('slice', 'mask', 'evidence', 'other')),
            png     BLOB NOT NULL,
            sha256  TEXT NOT NULL,
            PRIMARY KEY (run_id, name)
        );

        CREATE TABLE overrides (
            run_id      TEXT NOT NULL REFERENCES runs(run_id),
            seq         INTEGER NOT NULL,
            time        TEXT NOT NULL,
            kind        TEXT NOT NULL,
            detail_json TEXT NOT NULL DEFAULT '{}',
            who         TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (run_id, seq)
        );
        """
        + "".join(
            f"""
        CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
        BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: {table} rows cannot be {verb}'); END;
        """
            for table in ("run_starts", "runs", "artifacts", "overrides")
            for op, verb in (("UPDATE", "updated"), ("DELETE", "deleted"))
        ),
    ),
    (
        2,
        """
        CREATE TABLE chain (
            seq     INTEGER PRIMARY KEY,  -- insertion order
            kind    TEXT NOT NULL CHECK (kind IN ('start', 'run', 'override')),
            run_id  TEXT NOT NULL DEFAULT '',
            ref     INTEGER NOT NULL DEFAULT 0,  -- the override's seq
            time    TEXT NOT NULL,
            digest  TEXT NOT NULL,
            link    TEXT NOT NULL,
            note    TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX chain_run ON chain(run_id, kind);
        """
        + "".join(
            f"""
        CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
        BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: {table} rows cannot be {verb}'); END;
        """
            for table in ("chain", "schema_version")
            for op, verb in (("UPDATE", "updated"), ("DELETE", "deleted"))
        )
        + "".join(
            f"""
        CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table}
        WHEN EXISTS (SELECT 1 FROM {table} WHERE {where})
        BEGIN SELECT RAISE({action}); END;
        """
            for table, where, action in (
                ("run_starts", "run_id = NEW.run_id", "IGNORE"),
                ("runs", "run_id = NEW.run_id", "ABORT, 'audit trail is append-only: the run is already recorded'"),
                ("artifacts", "run_id = NEW.run_id AND name = NEW.name",
                 "ABORT, 'audit trail is append-only: artifacts cannot be replaced'"),
                ("overrides", "run_id = NEW.run_id AND seq = NEW.seq",
                 "ABORT, 'audit trail is append-only: overrides cannot be replaced'"),
                ("chain", "seq = NEW.seq", "ABORT, 'audit trail is append-only: chain rows cannot be replaced'"),
                ("schema_version", "version >= NEW.version",
                 "ABORT, 'schema_version is protected: versions only move forward'"),
            )
        ),
    ),
]

# Python steps run after a version's script, in the same transaction.
POST_STEPS: dict[int, Callable[[sqlite3.Connection, str], None]] = {2: chain.backfill}

# Every trigger the latest schema defines (``history --verify`` reports a missing one).
TRIGGERS: tuple[str, ...] = tuple(
    [f"{t}_no_{op}" for t in ("run_starts", "runs", "artifacts", "overrides", "chain", "schema_version")
     for op in ("update", "delete")]
    + [f"{t}_no_replace" for t in ("run_starts", "runs", "artifacts", "overrides", "chain", "schema_version")]
)

LATEST = MIGRATIONS[-1][0]


class SchemaError(RuntimeError):
    pass


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``LATEST``; each version in its own transaction. Returns it."""
    version = current_version(conn)
    if version > LATEST:
        raise SchemaError(
            f"the audit database is schema version {version}, newer than this app understands ({LATEST}); "
            "update CARE Viewer"
        )
    for target, script in MIGRATIONS:
        if target <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if current_version(conn) >= target:
                conn.execute("ROLLBACK")
                continue
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            for statement in _statements(script):
                conn.execute(statement)
            if target in POST_STEPS:
                POST_STEPS[target](conn, now)
            conn.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (target, now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return current_version(conn)


def _statements(script: str) -> list[str]:
    """Split a script on complete statements (triggers contain ';' inside BEGIN..END)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
