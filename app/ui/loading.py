"""Study loading on a worker thread (the loader is imported there, never at start-up)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .workers import TaskContext, Worker


def _load_task(paths: list[str]):
    def task(ctx: TaskContext):
        # Heavy imports (pydicom, SimpleITK) happen here, on the worker thread.
        from app.study.loader import load

        return load(
            paths,
            progress=ctx.progress,
            cancel=ctx.cancelled,
            on_partial=lambda volume, done, total: ctx.partial((volume, int(done), int(total))),
            # The provisional image travels as a partial of 0 slices (volume.provisional says which).
            on_provisional=lambda volume: ctx.partial((volume, 0, 0)),
        )

    return task


def load_worker(paths: Sequence[str | Path]) -> Worker:
    """A worker (not started: connect first, then ``start()``) that loads ``paths``. Signals: ``progress(done, total, msg)``,
    ``partial((volume, slices_done, total))`` (first, on a large series, a provisional one-slice volume
    as ``(volume, 0, 0)``), ``finished(LoadResult)``, ``errored(str)``,
    ``cancelled()``."""
    names = [str(p) for p in paths]
    return Worker(_load_task(names), name="Loading")


def sample_path() -> Path:
    from app.study.sample import sample_study_path

    return sample_study_path()
