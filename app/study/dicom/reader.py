"""DICOM files -> volumes: header scan, grouping/splitting/sorting, pixel fill."""
from __future__ import annotations

from typing import Callable, Collection, Sequence

from ..volume import LoadError, Volume
from .assemble import Cancelled, PartialCallback, build_volume
from .dedupe import drop_duplicate_instances
from .geometry import build_stacks
from .header import FrameRef
from .scan import ProvisionalCallback, scan_headers

Progress = Callable[[int, int, str], None]


def load_dicom(
    paths: Sequence[str],
    *,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    on_partial: PartialCallback | None = None,
    on_provisional: ProvisionalCallback | None = None,
    quiet_paths: Collection[str] = (),
) -> tuple[list[Volume], list[LoadError]]:
    """Read every DICOM image among ``paths``. Raises :class:`Cancelled` on cancel.

    Files in ``quiet_paths`` that turn out not to be DICOM at all are skipped without
    an error (files met while walking a folder whose extension says nothing).
    ``on_provisional(volume)``: one file's image before the headers are all read and sorted
    (``volume.provisional``; see :mod:`.scan`), on large series only.
    """
    frames, errors = scan_headers(paths, quiet=quiet_paths, progress=progress, cancel=cancel,
                                  on_provisional=on_provisional)
    stacks = build_stacks(drop_duplicate_instances(frames))
    # Largest volumes first is what a reader expects to see first; keep it stable.
    stacks.sort(key=lambda s: (s.frames[0].study_uid, _series_number(s.frames[0]), s.frames[0].series_uid, s.label))
    volumes: list[Volume] = []
    total = sum(len(s.frames) for s in stacks)
    done = 0
    for stack in stacks:
        def on_slice(_path: str) -> None:
            nonlocal done
            done += 1
            if progress is not None and (done % 8 == 0 or done == total):
                progress(done, total, "Reading pixel data")

        volume, errs = build_volume(stack, cancel=cancel, on_partial=on_partial, on_slice=on_slice)
        errors.extend(errs)
        if volume is not None:
            volumes.append(volume)
    return volumes, errors


def _series_number(f: FrameRef) -> int:
    try:
        return int(f.header.get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        return 0


__all__ = ["Cancelled", "load_dicom"]
