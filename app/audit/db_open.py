"""Opening the audit database: refuse a damaged file before SQLite writes a byte to it.

SQLite happily treats a zero-length file as a brand-new empty database and would create the
schema in it, so a trail truncated to zero (a crash of the file system, a careless ``> file``)
would silently become a fresh, empty trail. Anything that exists at the path must therefore
already be an intact SQLite database: the 16-byte header is checked by reading the file, and
``PRAGMA quick_check`` runs before any PRAGMA that writes (journal mode), so a damaged file is
byte-identical after the refusal.
"""
from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Callable

from .errors import AuditDamagedError, AuditStoreError

SQLITE_HEADER = b"SQLite format 3\x00"
# Only these result codes mean the file itself is damaged; anything else (I/O error, disk full,
# locked, permission) is a problem of the moment and is reported as such, not as damage.
_DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # extended codes start with these
BUSY_TIMEOUT_MS = 10_000  # the GUI and a CLI may write at the same time


def _damaged(path: Path, reason: str) -> AuditDamagedError:
    return AuditDamagedError(
        f"{path}: the audit database is damaged ({reason}); it was left untouched for forensics "
        "(move it aside to start a new trail)")


def precheck(path: Path) -> bool:
    """Whether a database already exists at ``path``.

    Raises:
        AuditDamagedError: the path exists but is empty or not a SQLite file.
        AuditStoreError: the path exists but is not a regular file, or cannot be read.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise AuditStoreError(f"{path}: cannot open the audit database ({exc.strerror or exc})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise AuditStoreError(f"{path}: cannot open the audit database (not a regular file)")
    if st.st_size == 0:
        raise _damaged(path, "the file is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise AuditStoreError(f"{path}: cannot read the audit database ({exc.strerror or exc})") from exc
    if head != SQLITE_HEADER:
        raise _damaged(path, "not a SQLite database file")
    return True


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Raises AuditDamagedError when SQLite's structural check fails (read-only: writes nothing)."""
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if str(getattr(exc, "sqlite_errorname", "") or "").startswith(_DAMAGE_CODES):
            raise _damaged(path, str(exc)) from exc
        raise AuditStoreError(f"{path}: cannot open the audit database ({exc})") from exc
    problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
    if problems:
        more = f" and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        raise _damaged(path, f"quick_check: {' '.join(problems[0].split())}{more}")


def _sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in ("", "-wal", "-shm", "-journal")]


def _remove_abandoned(path: Path) -> None:
    """Remove half-created databases left by a creator that was killed (its pid is gone); a
    live creator's file is left alone."""
    from .run_rows import pid_alive

    prefix = f".{path.name}.new-"
    for leftover in path.parent.glob(prefix + "*"):
        pid = leftover.name[len(prefix):]  # the main file only; sidecars go with it
        if pid.isdigit() and not pid_alive(int(pid)):
            for f in _sidecars(leftover):
                f.unlink(missing_ok=True)


def _create(path: Path, initialise: Callable[[sqlite3.Connection], object]) -> None:
    """Create the database complete (schema in place) under a temporary name, then link it to
    ``path`` without ever replacing a file there. So a database at ``path`` is never the empty
    file SQLite creates first, and a zero-length file there can only be damage; when two
    processes create it at once, the first link wins and the other uses that database.

    Raises:
        OSError, sqlite3.Error: the database cannot be created (nothing is left behind).
    """
    _remove_abandoned(path)
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    for stale in _sidecars(tmp):
        stale.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            initialise(conn)
        finally:
            conn.close()  # the last connection checkpoints: everything is in the main file now
        try:
            os.link(tmp, path)  # atomic and never clobbers
        except FileExistsError:
            pass  # another process created it first
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in _sidecars(tmp):
            leftover.unlink(missing_ok=True)


def connect(path: Path, initialise: Callable[[sqlite3.Connection], object]) -> sqlite3.Connection:
    """An intact, WAL-mode, synchronous=FULL connection to the database at ``path``, created
    with ``initialise`` (the schema migration) when absent. See :mod:`app.audit.store` for why
    WAL and FULL.

    Raises:
        AuditDamagedError: the existing file is damaged (it is left untouched).
        AuditStoreError: it cannot be created, opened or switched to WAL.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not precheck(path):
            _create(path, initialise)
    except (OSError, sqlite3.Error) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise AuditStoreError(f"{path}: cannot create the audit database ({reason})") from exc
    precheck(path)  # again: what is there now may be another process's database
    conn = None
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
        # what the code says (the sqlite3 module's implicit BEGINs are not).
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        quick_check(conn, path)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise AuditStoreError(f"{path}: cannot enable WAL journaling (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, AuditStoreError):
            raise
        if isinstance(exc, sqlite3.DatabaseError):
            raise AuditStoreError(f"{path}: cannot open the audit database ({exc})") from exc
        if isinstance(exc, OSError):
            raise AuditStoreError(f"{path}: cannot create the audit database ({exc})") from exc
        raise

