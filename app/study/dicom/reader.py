"""DICOM files -> volumes: header scan, grouping/splitting/sorting, pixel fill."""
from __future__ import annotations

import warnings
from typing import Callable, Collection, Sequence

from pydicom.dataset import Dataset

from ..volume import LoadError, Volume
from .assemble import Cancelled, PartialCallback, build_volume
from .attributes import _text
from .dedupe import drop_duplicate_instances
from .errors import ReadFailure
from .geometry import build_stacks
from .header import FrameRef, read_header
from .scan import ProvisionalCallback, ScanResult, scan_headers
from .seg_reader import find_target, is_seg, referenced_series

Progress = Callable[[int, int, str], None]
SetAside = tuple[str, Dataset]  # (path, header) of a SEG or document


def load_dicom(
    paths: Sequence[str],
    *,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    on_partial: PartialCallback | None = None,
    on_provisional: ProvisionalCallback | None = None,
    quiet_paths: Collection[str] = (),
    set_aside: list[SetAside] | None = None,
) -> tuple[list[Volume], list[LoadError]]:
    """Read every DICOM image among ``paths``. Raises :class:`Cancelled` on cancel.

    Files in ``quiet_paths`` that turn out not to be DICOM at all are skipped without
    an error (files met while walking a folder whose extension says nothing). With
    ``set_aside``, DICOM SEG objects and documents (SR, encapsulated PDF) are appended to it
    as ``(path, header)`` instead of becoming a volume or an error (the caller reads them).
    ``on_provisional(volume)``: one file's image before the headers are all read and sorted
    (``volume.provisional``; see :mod:`.scan`), on large series only.
    """
    segs: list[tuple[str, list[FrameRef]]] = []

    def claim(path: str, res: ScanResult) -> bool:
        if set_aside is None:
            return False
        if isinstance(res, ReadFailure):
            document = _document_header(path, res)
            if document is not None:
                set_aside.append((path, document))
            return document is not None
        if res and is_seg(res[0].header):
            segs.append((path, res))
            return True
        return False

    frames, errors = scan_headers(paths, quiet=quiet_paths, progress=progress, cancel=cancel,
                                  on_provisional=on_provisional, claim=claim)
    volumes = _build(frames, progress, cancel, on_partial, errors)
    # A SEG goes onto the series it segments (the caller reads it); one whose series is not
    # open shows as an image of its own, as before, saying why.
    orphans: list[FrameRef] = []
    for path, found in segs:
        if find_target(found[0].header, volumes) is not None:
            set_aside.append((path, found[0].header))  # type: ignore[union-attr]
        else:
            orphans.extend(found)
    for volume in _build(orphans, progress, cancel, on_partial, errors):
        series = referenced_series(volume.headers[0]) if volume.headers else "(none named)"
        volume.warnings.append(f"DICOM SEG shown as an image: the series it segments ({series}) is not open")
        volumes.append(volume)
    return volumes, errors


def _build(frames: list[FrameRef], progress: Progress | None, cancel: Callable[[], bool] | None,
           on_partial: PartialCallback | None, errors: list[LoadError]) -> list[Volume]:
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
    return volumes


# Structured reports (every SR storage class) and Encapsulated PDF.
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def is_document(ds: Dataset) -> bool:
    sop = _text(ds, "SOPClassUID")
    return sop.startswith(_SR_PREFIX) or sop == ENCAPSULATED_PDF


def _document_header(path: str, exc: ReadFailure) -> Dataset | None:
    """The header of a file that failed as an image because it is a document (rare: re-read)."""
    if not exc.reason.startswith("no image data"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds, _ = read_header(path)
    except ReadFailure:
        return None
    return ds if is_document(ds) else None


def _series_number(f: FrameRef) -> int:
    try:
        return int(f.header.get("SeriesNumber") or 0)
    except (TypeError, ValueError):
        return 0


__all__ = ["Cancelled", "ENCAPSULATED_PDF", "is_document", "load_dicom"]
