"""Run a long task (study loading, the CARE pipeline) off the GUI thread.

A task is a plain callable taking a :class:`TaskContext`; it reports through the context
and polls it for cancellation, and never touches Qt widgets. The :class:`Worker`
delivers everything back to the GUI thread as Qt signals::

    worker = Worker(lambda ctx: load(paths, progress=ctx.progress, cancel=ctx.cancelled,
                                     on_partial=lambda v, done, total: ctx.partial(v)))
    worker.signals.finished.connect(on_loaded)
    worker.start()
    ...
    worker.cancel()   # cooperative: the task sees ctx.cancelled() == True
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

log = logging.getLogger(__name__)


class WorkerSignals(QObject):
    progress = Signal(int, int, str)  # done, total, message
    partial = Signal(object)  # an intermediate result (e.g. a volume being filled)
    finished = Signal(object)  # the task's return value
    errored = Signal(str)  # one-line reason; the traceback goes to the log
    cancelled = Signal()  # the task stopped because cancel() was asked for
    done = Signal()  # always last, whatever the outcome


class TaskContext:
    """What a task sees of its worker. Safe to call from the worker thread."""

    def __init__(self, signals: WorkerSignals, cancel_event: threading.Event) -> None:
        self._signals = signals
        self._cancel = cancel_event

    def progress(self, done: int, total: int, message: str = "") -> None:
        self._signals.progress.emit(int(done), int(total), str(message))

    def partial(self, value: Any) -> None:
        self._signals.partial.emit(value)

    def cancelled(self) -> bool:
        return self._cancel.is_set()


def failure_message(name: str, reason: str, error_type: str = "Error") -> str:
    """The one line a failed task shows: its name and the first line of the reason."""
    first = reason.strip().splitlines()[0] if reason.strip() else error_type
    return f"{name} failed: {first}"


def _is_cancellation(exc: BaseException) -> bool:
    # app.pipeline.types.Cancelled, without importing the pipeline here.
    return type(exc).__name__ == "Cancelled"


class _Runnable(QRunnable):
    def __init__(self, worker: "Worker") -> None:
        super().__init__()
        self._worker = worker
        self.setAutoDelete(True)

    def run(self) -> None:  # worker thread
        self._worker._run()


class Worker:
    """One run of ``task(ctx)`` on a thread pool (the global one unless given)."""

    # Workers still running are kept alive here (a dropped Python reference must not
    # delete the signal object while the thread is still emitting into it).
    _alive: set["Worker"] = set()

    def __init__(self, task: Callable[[TaskContext], Any], *, name: str = "task", pool: QThreadPool | None = None) -> None:
        self.name = name
        self.signals = WorkerSignals()
        self._task = task
        self._cancel = threading.Event()
        self._pool = pool or QThreadPool.globalInstance()
        self._finished = threading.Event()
        self.context = TaskContext(self.signals, self._cancel)

    def start(self) -> "Worker":
        """Run the task. Connect to ``signals`` *before* this: a fast task may emit at once."""
        Worker._alive.add(self)
        self.signals.done.connect(lambda: Worker._alive.discard(self))
        self._pool.start(_Runnable(self))
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def is_running(self) -> bool:
        return self in Worker._alive and not self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task returned (for shutdown and tests)."""
        return self._finished.wait(timeout)

    def _run(self) -> None:
        try:
            result = self._task(self.context)
        except BaseException as exc:  # noqa: BLE001 - everything must reach the GUI as a message
            if _is_cancellation(exc):
                self.signals.cancelled.emit()
            else:
                log.error("%s failed:\n%s", self.name, traceback.format_exc())
                self.signals.errored.emit(failure_message(self.name, str(exc), type(exc).__name__))
        else:
            if self._cancel.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.finished.emit(result)
        finally:
            self._finished.set()
            self.signals.done.emit()
