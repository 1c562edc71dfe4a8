"""The audit trail as the viewer uses it: plain calls, plain results, typed errors (no Qt).

The GUI never calls these on its main thread: :mod:`app.ui.audit_worker` queues each call on
one worker thread. Keeping the calls here (not in the Qt adaptor) means they can be tested
without a window and reused by anything else that needs "the store, opened on first use".

Opening is lazy because creating the database is itself a visible side effect: a viewer that
never asks a question must not leave an empty audit file behind.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .paths import default_db_path

if TYPE_CHECKING:  # the store pulls in OpenCV (PNG codec): imported on first open, not at GUI start
    from app.pipeline.record import Override

    from .store import AuditStore, LoadedRun, RunSummary


class AuditUnavailable(RuntimeError):
    """The audit database cannot be opened (one line: path and reason)."""


StoreFactory = Callable[[], "AuditStore"]


def _default_store() -> "AuditStore":
    from .store import AuditStore

    return AuditStore()


class AuditService:
    """One lazily opened :class:`AuditStore` and the calls the viewer makes on it.

    Thread-safe: the open is guarded by a lock, and the store serialises its own connection.
    ``store_factory`` defaults to the store at ``$CARE_DATA_DIR`` / the user data folder.
    """

    def __init__(self, store_factory: StoreFactory | None = None) -> None:
        self._factory: StoreFactory = store_factory or _default_store
        self._store: "AuditStore | None" = None
        self._lock = threading.Lock()

    # ----- the store -------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._store is not None

    @staticmethod
    def database_exists() -> bool:
        """Whether there is a database to read yet (a stat, not an open)."""
        try:
            return default_db_path().exists()
        except Exception:  # noqa: BLE001 - no data folder: nothing recorded yet
            return False

    def store(self) -> "AuditStore":
        """The open store (opened now if needed); :class:`AuditUnavailable` if it cannot be."""
        with self._lock:
            if self._store is None:
                try:
                    self._store = self._factory()
                except Exception as exc:  # AuditStoreError, OSError: say why in one line
                    raise AuditUnavailable(str(exc)) from exc
            return self._store

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001 - closing at exit must not raise
                pass

    # ----- the calls the viewer makes --------------------------------------------------
    def list_runs(self, study_uid: str | None = None) -> "list[RunSummary]":
        return self.store().list_runs(study_uid=study_uid)

    def load_run(self, run_id: str) -> "LoadedRun":
        return self.store().load_run(run_id)

    def overrides(self, run_id: str) -> "list[Override]":
        return self.store().overrides(run_id)

    def append_override(self, run_id: str, kind: str, detail: Mapping[str, Any],
                        who: str = "") -> "list[Override]":
        """Append one override; returns the run's overrides after it (what the panel shows)."""
        store = self.store()
        store.append_override(run_id, kind, detail, who=who)
        return store.overrides(run_id)
