"""The one run observer that makes a run crash-visible in the audit trail (GUI and CLI alike).

``on_started`` comes from :func:`app.pipeline.lifecycle.execute_run` once the record exists and
before any model runs; committing the ``run_starts`` row there means a run killed later (even
by SIGKILL or a power cut) is still listed, as "interrupted". If the commit fails (trail
damaged, unwritable, disk full) the exception propagates and the run never starts: a run that
cannot be audited is not made. Finishing stays with the caller, which decides what to tell the
user when the final write fails.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from app.pipeline.lifecycle import NullObserver
from app.pipeline.record import RunRecord
from app.pipeline.types import Stage

if TYPE_CHECKING:
    from app.study.volume import PatientInfo

    from .store import AuditStore

ProgressCallback = Callable[[Stage, str, float], None]


class AuditRunObserver(NullObserver):
    """Commits the run's start row in ``on_started`` and forwards progress to ``progress``.

    ``store`` may be None (a caller that runs without a trail, e.g. a test harness): then only
    progress is forwarded. ``record`` is the run's record once started (None before).
    """

    def __init__(self, store: "AuditStore | None", patient: "PatientInfo | None" = None,
                 parent_run_id: str | None = None, progress: ProgressCallback | None = None) -> None:
        self.store, self.patient, self.parent_run_id, self.progress = store, patient, parent_run_id, progress
        self.record: RunRecord | None = None

    def on_started(self, record: RunRecord) -> None:
        """Raises:
            AuditStoreError: the start row cannot be committed (the run must not start)."""
        self.record = record
        if self.store is not None:
            self.store.begin_run(record, patient=self.patient, parent_run_id=self.parent_run_id)

    def on_progress(self, stage: Stage, message: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(stage, message, float(fraction))
