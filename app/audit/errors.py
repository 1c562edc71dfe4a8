"""The audit trail's errors: each one a single user-facing line (path and reason)."""
from __future__ import annotations


class AuditStoreError(RuntimeError):
    """A one-line, user-facing problem with the audit database."""


class AuditDamagedError(AuditStoreError):
    """The database file exists but is not an intact SQLite database. The file is left exactly
    as found (evidence for forensics) and is never re-initialised over."""


class UnknownRunError(AuditStoreError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown run"
