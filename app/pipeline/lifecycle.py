"""The run lifecycle: prepare -> ``on_started(record)`` -> strategy -> ``on_finished(record)``.

:func:`execute_run` is the one place that turns how a strategy ended into the record's status:
completed; cancelled (a warning says so); failed with the message in ``errors`` for a
:class:`PipelineError` or a bug. :class:`WeightsMissingError` closes the record as failed, tells
the observer, and then propagates: the caller tells the user how to install the weights.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from .cancellation import cancel_scope
from .disclosure import weights_disclosure
from .record import RunRecord, utc_now
from .types import Box, Cancelled, PipelineError, Stage, WeightsMissingError
from .vocab import RunStatus

if TYPE_CHECKING:
    from app.study.volume import Volume, Window

    from .context import CancelFn, ProgressFn
    from .stages import RunPreparer
    from .strategies.base import RunStrategy

log = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Told about one run. ``on_started`` comes once the record exists and before any model runs
    (the GUI commits it to the audit store there, so an interrupted run is still listed); an
    exception it raises stops the run before it starts. ``on_finished`` sees the final record."""

    def on_started(self, record: RunRecord) -> None: ...

    def on_progress(self, stage: Stage, message: str, fraction: float) -> None: ...

    def on_finished(self, record: RunRecord) -> None: ...


class NullObserver:
    """Observes nothing; the base for observers that need only some of the hooks."""

    def on_started(self, record: RunRecord) -> None:
        pass

    def on_progress(self, stage: Stage, message: str, fraction: float) -> None:
        pass

    def on_finished(self, record: RunRecord) -> None:
        pass


class ProgressObserver(NullObserver):
    """A bare progress callback as an observer (the CLI's stderr lines, older callers)."""

    def __init__(self, progress: "ProgressFn") -> None:
        self.progress = progress

    def on_progress(self, stage: Stage, message: str, fraction: float) -> None:
        self.progress(stage, message, fraction)


def execute_run(
    pipeline: "RunPreparer",
    strategy: "RunStrategy",
    volume: "Volume",
    slice_index: int,
    question: str,
    *,
    window: "Window | None" = None,
    observer: RunObserver | None = None,
    cancel: "CancelFn | None" = None,
    boxes: Sequence[Box] | None = None,
    discarded: set[str] | None = None,
) -> RunRecord:
    """Answer ``question`` about slice ``slice_index`` with ``strategy``; never loses a started record.

    A PipelineError from ``prepare`` (empty question, slice out of range) propagates before
    ``on_started``: nothing ran and there is no record.
    """
    obs: RunObserver = observer if observer is not None else NullObserver()
    progress: Any = obs.on_progress if observer is not None else None
    ctx = pipeline.prepare(volume, slice_index, question, window=window, mode=strategy.mode,
                           progress=progress, cancel=cancel, boxes=boxes, discarded=discarded)
    record = ctx.record
    profile = getattr(pipeline, "profile", None)  # CarePipeline has one; a bare test preparer may not
    if profile is not None:  # before on_started: the audit store's first copy carries the label
        record.profile_weights = profile.weights
        record.weights_disclosure = weights_disclosure(profile)
    obs.on_started(record)
    try:
        pipeline.check_weights()
        with cancel_scope(cancel):  # lets a remote request in flight see the flag (app.pipeline.cancellation)
            strategy.run(ctx)
        record.status = RunStatus.COMPLETED
    except WeightsMissingError as exc:
        record.status = RunStatus.FAILED
        record.finished = utc_now()
        record.errors.append(str(exc))
        obs.on_finished(record)
        raise
    except Cancelled as exc:
        record.status = RunStatus.CANCELLED
        record.warn(str(exc))
    except PipelineError as exc:
        record.status = RunStatus.FAILED
        record.errors.append(str(exc))
    except Exception as exc:  # a bug must not take the GUI down; the record keeps the work done
        log.exception("pipeline run %s failed", record.run_id)
        record.status = RunStatus.FAILED
        record.errors.append(f"internal error: {type(exc).__name__}: {exc}")
    record.finished = utc_now()
    obs.on_finished(record)
    return record
