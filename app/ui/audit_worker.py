"""The audit service off the GUI thread: every call queued on ONE worker thread.

Opening SQLite, listing runs, decoding a stored run's PNGs and appending overrides can each
take long enough to stall the viewer (a busy database waits up to its busy timeout). So the
controller never calls :class:`~app.audit.service.AuditService` itself; it submits a call
here and gets the result back on the GUI thread. One serial queue (a pool of one thread)
keeps appends in the order the clinician made them, and lists and loads see the appends
submitted before them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool

from app.audit.service import AuditService, AuditUnavailable

from .workers import Worker


@dataclass(frozen=True)
class AuditFailure:
    """Why a call failed: ``unavailable`` when the database could not even be opened."""

    message: str
    unavailable: bool = False
    error_type: str = "Error"  # the exception's class name, for an empty message


OnDone = Callable[[Any], None]
OnError = Callable[[AuditFailure], None]


@dataclass(frozen=True)
class _Reply:
    on_done: OnDone
    on_error: OnError | None
    value: Any = None
    failure: AuditFailure | None = None


def _ignore(_: Any) -> None:
    pass


class AuditWorker(QObject):
    """Runs ``call(service)`` on the audit thread; ``on_done``/``on_error`` on the GUI thread."""

    def __init__(self, service: AuditService | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.service = service or AuditService()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # serial: order kept, one SQLite user at a time
        self._pending = 0
        self._closed = False

    @property
    def idle(self) -> bool:
        """No call queued, running, or waiting for its result to be delivered."""
        return self._pending == 0

    def submit(self, call: Callable[[AuditService], Any], on_done: OnDone = _ignore, on_error: OnError | None = None,
               *, name: str = "audit") -> Worker | None:
        """Queue ``call``; None (nothing queued) once :meth:`shutdown` ran: a closing window's
        late refresh must not reopen, and so re-create, the database."""
        if self._closed:
            return None
        service = self.service

        def task(_ctx) -> _Reply:  # audit thread: errors become values, never tracebacks in the GUI
            try:
                return _Reply(on_done, on_error, call(service))
            except AuditUnavailable as exc:
                return _Reply(on_done, on_error, failure=AuditFailure(str(exc), True, type(exc).__name__))
            except Exception as exc:  # noqa: BLE001 - unknown run, damaged record, unwritable database
                return _Reply(on_done, on_error, failure=AuditFailure(str(exc), False, type(exc).__name__))

        worker = Worker(task, name=name, pool=self._pool)
        self._pending += 1
        # A bound method of this QObject: if the window is gone, Qt drops the delivery
        # instead of calling into deleted widgets.
        worker.signals.finished.connect(self._deliver)
        worker.start()
        return worker

    def _deliver(self, reply: _Reply) -> None:
        self._pending -= 1
        if reply.failure is None:
            reply.on_done(reply.value)
        elif reply.on_error is not None:
            reply.on_error(reply.failure)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Finish what is queued (appends must reach the database), then close the store."""
        self._closed = True
        self._pool.waitForDone(int(timeout * 1000))
        self.service.close()
