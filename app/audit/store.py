"""The persistent audit trail: every CARE run, its images and later clinician overrides.

One embedded SQLite database (see :mod:`app.audit.paths` for where, :mod:`app.audit.schema`
for the tables). Design choices:

- **Append-only.** The API has no update or delete; triggers abort any UPDATE/DELETE.
  A clinician override is a new ``overrides`` row; a re-asked question is a new run whose
  ``parent_run_id`` names the earlier one.
- **Crash-visible.** :meth:`AuditStore.begin_run` commits a ``run_starts`` row before any
  model runs; :meth:`AuditStore.finish_run` inserts the final record and all its PNG
  artifacts in ONE transaction. A run killed in between is listed as "interrupted"; a
  kill during ``finish_run`` rolls the whole transaction back on the next open, so the
  run is again just interrupted and never half-recorded.
- **WAL + synchronous=FULL.** WAL lets the viewer list history while a run is being
  written (readers never block the writer) and keeps the main file consistent if the
  process dies mid-write. In WAL mode ``synchronous=NORMAL`` is still corruption-safe but
  may lose the last commits on power loss; FULL fsyncs the WAL on every commit so a run the
  radiologist was told is "saved" survives a power cut too. Commits happen a few times per
  run (seconds to minutes apart), so the fsync cost is irrelevant here.
- **Self-contained.** ``finish_run`` stores the windowed slice the models saw as a
  ``slice`` artifact, so reports never need the original study on disk.
- **Identifying fields apart.** :class:`~app.study.volume.PatientInfo` is kept in its own
  column (as it was at the time of the run), not inside the record JSON, so exports and
  de-identified reports simply leave it behind.

No Qt here; the GUI calls this from its worker thread (one connection, serialised by a lock).
"""
from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from app.pipeline.record import Override, RunRecord, utc_now
from app.pipeline.vocab import OverrideKind
from app.study.volume import PatientInfo

from . import artifacts as art
from . import chain
from .db_open import connect
from .errors import AuditDamagedError, AuditStoreError, UnknownRunError
from .paths import default_db_path
from .run_rows import (
    STATUS_IN_PROGRESS,
    STATUS_INTERRUPTED,
    LoadedRun,
    RunSummary,
    patient_from_json,
    patient_json,
    pid_alive,
)
from .schema import SchemaError, migrate
from .verify import VerifyReport, verify

__all__ = ["AuditStore", "AuditStoreError", "AuditDamagedError", "UnknownRunError", "RunSummary", "LoadedRun",
           "STATUS_INTERRUPTED", "STATUS_IN_PROGRESS", "VerifyReport", "persist", "persist_quietly",
           "record_run_from_dir"]

def _slice_from_source(record: RunRecord) -> np.ndarray | None:
    """The windowed slice re-read from the study (sha256-verified), for a record that carries
    none, so the stored run stays self-contained; None when the source is gone or changed."""
    from .report.slice_source import reload_source

    try:
        return reload_source(record).rgb
    except Exception:  # best effort: the record itself is what must be saved
        return None


class AuditStore:
    """The audit database. ``path`` defaults to ``$CARE_DATA_DIR`` / the user data dir."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._lock = threading.RLock()
        self._active: set[str] = set()  # runs this process has begun and not finished
        self._conn = connect(self.path, migrate)  # refuses a damaged file, leaving it untouched
        try:
            self.schema_version = migrate(self._conn)
        except (sqlite3.DatabaseError, OSError, SchemaError) as exc:
            self._conn.close()
            if isinstance(exc, SchemaError):  # e.g. written by a newer CARE Viewer
                raise AuditStoreError(f"{self.path}: {exc}") from exc
            raise AuditStoreError(f"{self.path}: cannot update the audit database ({exc})") from exc

    # ----- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "AuditStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _write(self, fn: Any) -> Any:
        """Run ``fn(conn)`` in one IMMEDIATE transaction (all or nothing)."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise AuditStoreError(f"{self.path}: the audit database is not writable ({exc})") from exc
            try:
                result = fn(self._conn)
                self._conn.execute("COMMIT")
                return result
            except BaseException as exc:
                try:
                    self._conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite already rolled back (e.g. disk full): keep the original error
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    # disk full, I/O error: one line for the user, nothing was recorded
                    raise AuditStoreError(f"{self.path}: cannot write the audit database ({exc})") from exc
                raise

    # ----- writing ---------------------------------------------------------------------
    def begin_run(
        self, record: RunRecord, *, patient: PatientInfo | None = None, parent_run_id: str | None = None
    ) -> None:
        """Commit that ``record`` started (before any model runs). Idempotent per run id."""
        self._write(lambda c: self._insert_start(c, record, patient, parent_run_id))
        self._active.add(record.run_id)

    def finish_run(
        self,
        record: RunRecord,
        artifacts: Mapping[str, np.ndarray | bytes] | None = None,
        *,
        patient: PatientInfo | None = None,
        parent_run_id: str | None = None,
    ) -> None:
        """Insert the final record and its PNG artifacts in one transaction.

        ``artifacts`` adds to (or replaces by name) the images found on the record's
        transient fields (slice, masks, evidence); arrays are PNG-encoded, bytes must
        already be PNG. A run finished without ``begin_run`` (e.g. the ``ask`` CLI) gets its
        start row in the same transaction.
        """
        images: dict[str, np.ndarray | bytes] = dict(art.collect(record))
        images.update(artifacts or {})
        if art.SLICE_NAME not in images:
            slice_rgb = _slice_from_source(record)
            if slice_rgb is not None:
                images[art.SLICE_NAME] = slice_rgb
        encoded = {name: art.encode_png(img) for name, img in images.items()}  # before locking
        record_json = json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True)
        finished = record.finished or utc_now()

        def write(conn: sqlite3.Connection) -> None:
            self._insert_start(conn, record, patient, parent_run_id)
            try:
                conn.execute(
                    "INSERT INTO runs (run_id, finished, status, final_answer, record_json, record_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (record.run_id, finished, record.status, record.final_answer or "", record_json,
                     art.sha256(record_json.encode("utf-8"))),
                )
            except sqlite3.IntegrityError as exc:
                raise AuditStoreError(
                    f"run {record.run_id} is already recorded; the audit trail is append-only "
                    "(record a re-asked question as a new run with parent_run_id)"
                ) from exc
            conn.executemany(
                "INSERT INTO artifacts (run_id, name, kind, png, sha256) VALUES (?, ?, ?, ?, ?)",
                [(record.run_id, name, art.kind_of(record, name), sqlite3.Binary(data), art.sha256(data))
                 for name, data in encoded.items()],
            )
            chain.append(conn, chain.KIND_RUN, record.run_id, 0, chain.stored_run_digest(conn, record.run_id),
                         finished)

        self._write(write)
        self._active.discard(record.run_id)

    def _insert_start(
        self, conn: sqlite3.Connection, record: RunRecord, patient: PatientInfo | None, parent: str | None
    ) -> None:
        inp = record.input
        conn.execute(
            "INSERT OR IGNORE INTO run_starts (run_id, created, study_uid, series_uid, slice_index, question, "
            "mode, profile, parent_run_id, patient_json, host, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.run_id, record.created, inp.study_uid, inp.series_uid, int(inp.slice_index), record.question,
             record.mode, record.profile, parent, patient_json(patient), socket.gethostname(), os.getpid()),
        )

    def append_override(self, run_id: str, kind: OverrideKind | str, detail: Mapping[str, Any] | None = None,
                        who: str = "") -> Override:
        """Append a clinician override to a finished run; the original record is untouched."""
        kind = str(kind).strip()
        if not kind:
            raise ValueError("an override needs a kind")
        detail_json = json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, default=str)
        now = utc_now()

        def write(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
                raise UnknownRunError(f"no finished run {run_id} in the audit trail")
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM overrides WHERE run_id = ?",
                               (run_id,)).fetchone()[0]
            conn.execute("INSERT INTO overrides (run_id, seq, time, kind, detail_json, who) VALUES (?, ?, ?, ?, ?, ?)",
                         (run_id, seq, now, kind, detail_json, who))
            chain.append(conn, chain.KIND_OVERRIDE, run_id, int(seq),
                         chain.override_digest(run_id, int(seq), now, kind, detail_json, who), now)
            return int(seq)

        seq = self._write(write)
        return Override.stored(run_id, seq, now, kind, json.loads(detail_json), who)

    # ----- reading ---------------------------------------------------------------------
    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise AuditStoreError(f"{self.path}: cannot read the audit database ({exc})") from exc

    def _unfinished_status(self, run_id: str, host: str, pid: int) -> str:
        if run_id in self._active:
            return STATUS_IN_PROGRESS
        if host == socket.gethostname() and pid != os.getpid() and pid_alive(pid):
            return STATUS_IN_PROGRESS
        return STATUS_INTERRUPTED

    def list_runs(self, study_uid: str | None = None) -> list[RunSummary]:
        """Every run (finished or not), newest first; only one study's when ``study_uid``."""
        sql = (
            "SELECT s.run_id, s.created, r.finished, r.status, s.study_uid, s.series_uid, s.slice_index, "
            "s.question, s.mode, s.profile, r.final_answer, s.parent_run_id, s.host, s.pid, "
            "(SELECT COUNT(*) FROM overrides o WHERE o.run_id = s.run_id) "
            "FROM run_starts s LEFT JOIN runs r ON r.run_id = s.run_id"
        )
        params: tuple[Any, ...] = ()
        if study_uid is not None:
            sql += " WHERE s.study_uid = ?"
            params = (study_uid,)
        sql += " ORDER BY s.created DESC, s.rowid DESC"
        out = []
        for (rid, created, finished, status, study, series, k, q, mode, profile, answer, parent, host, pid,
             n) in self._query(sql, params):
            out.append(RunSummary(
                run_id=rid, created=created, finished=finished or "",
                status=status if finished else self._unfinished_status(rid, host, pid),
                study_uid=study, series_uid=series, slice_index=int(k), question=q, mode=mode, profile=profile,
                final_answer=answer or "", parent_run_id=parent, overrides=int(n),
            ))
        return out

    def interrupted_runs(self) -> list[RunSummary]:
        return [r for r in self.list_runs() if r.status == STATUS_INTERRUPTED]

    def resolve(self, run_id_or_prefix: str) -> str:
        """The full run id for an id or a unique prefix of one (like git); UnknownRunError otherwise."""
        key = run_id_or_prefix.strip()
        if not key:
            raise UnknownRunError("empty run id")
        like = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self._query("SELECT run_id FROM run_starts WHERE run_id = ? OR run_id LIKE ? ESCAPE '\\'",
                           (key, like))
        ids = sorted({r[0] for r in rows})
        if key in ids:
            return key
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise UnknownRunError(f"no run {key} in the audit trail ({self.path})")
        raise UnknownRunError(f"run id prefix {key} is ambiguous ({len(ids)} runs match)")

    def overrides(self, run_id: str) -> list[Override]:
        rows = self._query("SELECT seq, time, kind, detail_json, who FROM overrides WHERE run_id = ? ORDER BY seq",
                           (run_id,))
        return [Override.stored(run_id, int(s), t, k, json.loads(d), w) for s, t, k, d, w in rows]

    def load_run(self, run_id: str, *, load_images: bool = True) -> LoadedRun:
        """The finished run (transient arrays restored from the PNG blobs) and its overrides."""
        run_id = self.resolve(run_id)
        rows = self._query(
            "SELECT r.record_json, r.record_sha256, s.patient_json, s.parent_run_id "
            "FROM runs r JOIN run_starts s ON s.run_id = r.run_id WHERE r.run_id = ?", (run_id,))
        if not rows:
            raise UnknownRunError(f"run {run_id} never finished (interrupted); there is no record to load")
        record_json, digest, patient_json, parent = rows[0]
        if art.sha256(record_json.encode("utf-8")) != digest:
            raise AuditStoreError(f"run {run_id}: the stored record does not match its sha256 (tampered or damaged)")
        try:
            record = RunRecord.from_dict(json.loads(record_json))
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditStoreError(f"run {run_id}: cannot read the stored record ({exc})") from exc
        if load_images:
            blobs: dict[str, bytes] = {}
            for name, png, sha in self._query(
                    "SELECT name, CAST(png AS BLOB), sha256 FROM artifacts WHERE run_id = ?", (run_id,)):
                data = bytes(png)
                if art.sha256(data) != sha:
                    raise AuditStoreError(f"run {run_id}: artifact {name} does not match its sha256")
                blobs[name] = data
            art.attach(record, blobs)
        return LoadedRun(record, self.overrides(run_id), patient_from_json(patient_json), parent)

    def artifact(self, run_id: str, name: str) -> bytes:
        rows = self._query("SELECT png FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name))
        if not rows:
            raise UnknownRunError(f"run {run_id} has no artifact {name}")
        return bytes(rows[0][0])

    def verify(self) -> VerifyReport:
        """Recompute every record/artifact hash and chain link (see :mod:`app.audit.verify`).

        Raises:
            AuditStoreError: the database cannot be read.
        """
        with self._lock:
            try:
                return verify(self._conn)
            except sqlite3.DatabaseError as exc:
                raise AuditStoreError(f"{self.path}: cannot read the audit database ({exc})") from exc

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])

    def journal_mode(self) -> str:
        return str(self._query("PRAGMA journal_mode")[0][0])


# ----------------------------------------------------------------------------------------
# One-call helpers for the CLIs (``ask`` persists every run it makes)
# ----------------------------------------------------------------------------------------
def persist(
    record: RunRecord,
    artifacts: Mapping[str, np.ndarray | bytes] | None = None,
    *,
    patient: PatientInfo | None = None,
    parent_run_id: str | None = None,
    store: AuditStore | None = None,
) -> str:
    """Record a finished run in the (default) audit store; returns its run id."""
    own = store is None
    s = store or AuditStore()
    try:
        s.finish_run(record, artifacts, patient=patient, parent_run_id=parent_run_id)
    finally:
        if own:
            s.close()
    return record.run_id


def persist_quietly(record: RunRecord, *, patient: PatientInfo | None = None) -> str | None:
    """:func:`persist`, but a failure is returned as a one-line warning instead of raised
    (the run folder is already written; an unwritable audit database must not fail ``ask``)."""
    try:
        persist(record, patient=patient)
    except (AuditStoreError, OSError, ValueError, sqlite3.Error) as exc:
        return f"the run was not added to the audit trail: {exc}"
    return None


def record_run_from_dir(run_dir: str | os.PathLike, *, patient: PatientInfo | None = None,
                        store: AuditStore | None = None) -> str:
    """Import a run folder written by ``ask --out DIR`` (run.json + PNGs); returns its run id."""
    from app.pipeline.run_io import read_run

    try:
        record = read_run(run_dir)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AuditStoreError(f"{run_dir}: not a readable run folder ({exc})") from exc
    return persist(record, patient=patient, store=store)
