"""The hash chain that makes the audit trail tamper-evident.

Triggers stop the app (and careless tools) from rewriting rows, but anyone with the file can
drop a trigger or ``INSERT OR REPLACE`` a row. So every finished run and every override also
appends one ``chain`` row whose ``link`` is

    sha256(previous link + digest of the item + run id + time)

in insertion order. Changing, removing or re-inserting any recorded item breaks every link
after it, which ``care-viewer history --verify`` reports. (This is evidence, not prevention:
someone who rewrites the whole chain consistently is only caught by comparing the chain head
with a copy kept elsewhere; ``--verify`` prints the head for that purpose.)

The first row (kind ``start``) records when the chain began: on a database created before the
chain existed, the runs and overrides already there are chained once, in their stored order,
when the migration runs; they were not tamper-evident before that moment.
"""
from __future__ import annotations

import hashlib
import sqlite3
from typing import Iterable

KIND_START, KIND_RUN, KIND_OVERRIDE = "start", "run", "override"
GENESIS = ""  # the "previous link" of the first row


def _h(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def run_digest(record_sha256: str, finished: str, status: str, final_answer: str,
               artifacts: Iterable[tuple[str, str]]) -> str:
    """The digest of a finished run as stored: its record hash, its closing fields and every
    artifact's (name, sha256), so swapping an image and its hash is caught too."""
    arts = "\x1e".join(f"{name}={sha}" for name, sha in sorted(artifacts))
    return _h("run", record_sha256, finished, status, final_answer, arts)


def override_digest(run_id: str, seq: int, time: str, kind: str, detail_json: str, who: str) -> str:
    return _h("override", run_id, str(int(seq)), time, kind, detail_json, who)


def start_digest(note: str) -> str:
    return _h("start", note)


def link(prev: str, digest: str, run_id: str, when: str) -> str:
    return _h(prev, digest, run_id, when)


def head(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT link FROM chain ORDER BY seq DESC LIMIT 1").fetchone()
    return str(row[0]) if row else GENESIS


def append(conn: sqlite3.Connection, kind: str, run_id: str, ref: int, digest: str, when: str,
           note: str = "") -> str:
    """Append one chain row (inside the caller's write transaction, which serialises writers so
    the head read here is the head the row is linked to); returns its link."""
    new = link(head(conn), digest, run_id, when)
    conn.execute("INSERT INTO chain (kind, run_id, ref, time, digest, link, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (kind, run_id, int(ref), when, digest, new, note))
    return new


def stored_run_digest(conn: sqlite3.Connection, run_id: str) -> str:
    """:func:`run_digest` of the run as its rows stand now (hashes as stored, not recomputed)."""
    finished, status, answer, sha = conn.execute(
        "SELECT finished, status, final_answer, record_sha256 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    arts = conn.execute("SELECT name, sha256 FROM artifacts WHERE run_id = ?", (run_id,)).fetchall()
    return run_digest(sha, finished, status, answer, [(str(n), str(s)) for n, s in arts])


def stored_override_digest(conn: sqlite3.Connection, run_id: str, seq: int) -> str | None:
    row = conn.execute("SELECT time, kind, detail_json, who FROM overrides WHERE run_id = ? AND seq = ?",
                       (run_id, seq)).fetchone()
    return None if row is None else override_digest(run_id, seq, *row)


def backfill(conn: sqlite3.Connection, when: str) -> None:
    """Chain the runs and overrides of a database created before the chain existed (migration 2)."""
    runs = [str(r[0]) for r in conn.execute("SELECT run_id FROM runs ORDER BY rowid")]
    overrides = conn.execute("SELECT run_id, seq, time FROM overrides ORDER BY rowid").fetchall()
    note = (f"chain started {when}; {len(runs)} run(s) and {len(overrides)} override(s) recorded earlier were "
            "chained as found (not tamper-evident before this)")
    append(conn, KIND_START, "", 0, start_digest(note), when, note)
    for run_id in runs:
        finished = conn.execute("SELECT finished FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
        append(conn, KIND_RUN, run_id, 0, stored_run_digest(conn, run_id), finished)
    for run_id, seq, time in overrides:
        append(conn, KIND_OVERRIDE, run_id, int(seq), stored_override_digest(conn, run_id, int(seq)) or "", time)
