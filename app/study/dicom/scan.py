"""The header scan of many files: a provisional image first, then every header in a thread pool.

A large series cannot be sorted before every header is read, and that takes a while (about
5 ms a file). So, when a caller wants it, the middle file by name is scanned and decoded
first and shown as a *provisional* one-slice volume (``Volume.provisional``): a picture of
the study, labelled as such, that no measurement or model run accepts, replaced by the
sorted series as soon as its first slice is in. A truncated or non-image file there is
skipped for the next one; its reason still reaches the error list once, as for any file.

The remaining headers are read in a small thread pool: file reads release the GIL, and they
are most of the time on a network share or a cold disk (from a warm page cache the parsing
is CPU-bound and the pool gains little). Results are kept in path order, so frames, errors
and the final volume are the same as a serial scan's.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Collection, Sequence

from ..volume import LoadError, Volume
from .assemble import Cancelled, build_volume
from .errors import ReadFailure
from .frame_ref import FrameRef
from .geometry import build_stacks
from .header import scan_file

Progress = Callable[[int, int, str], None]
ProvisionalCallback = Callable[[Volume], None]

# Below this many files the sorted series follows within about 0.1 s: a provisional image
# would only flicker.
PROVISIONAL_MIN_FILES = 16
# Files tried for the provisional image before giving up on one (each is scanned once anyway).
PROVISIONAL_TRIES = 8
# Threads reading headers; 1 reads them serially (the benchmark's reference).
MAX_WORKERS = 4

ScanResult = list[FrameRef] | ReadFailure
# Called per file, in path order, on the caller's thread: True takes the result away from the
# frames/errors (the reader sets DICOM SEGs and documents aside this way).
Claim = Callable[[str, ScanResult], bool]


def _scan_one(path: str) -> ScanResult:
    try:
        return scan_file(path)
    except ReadFailure as exc:
        return exc


def provisional_volume(frames: list[FrameRef]) -> Volume | None:
    """One frame of a just-scanned file (the middle one of a multi-frame file) as a
    one-slice volume marked provisional; None when its pixels cannot be read."""
    ref = frames[len(frames) // 2]
    stacks = build_stacks([ref])
    if not stacks:
        return None
    try:
        volume, _errors = build_volume(stacks[0])  # its errors are reported by the full pass
    except ReadFailure:
        return None
    if volume is None:
        return None
    volume.provisional = True
    volume.warnings.append("provisional image: one file shown while the series is read and sorted")
    return volume


def _workers(n: int) -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1, n // 8))


def scan_headers(
    paths: Sequence[str],
    *,
    quiet: Collection[str] = (),
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
    on_provisional: ProvisionalCallback | None = None,
    claim: Claim | None = None,
) -> tuple[list[FrameRef], list[LoadError]]:
    """Frames of every file in ``paths`` (path order) and a LoadError per unusable file.
    Files in ``quiet`` that are not DICOM at all are skipped silently; a file ``claim`` takes
    is in neither. Raises Cancelled."""
    # pydicom warns about every odd value in real-world files; the reader reports what
    # matters as LoadError/volume warnings instead. The filter is set here, once, and not in
    # the pool's tasks: catch_warnings swaps process-wide state and is not thread-safe.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _scan(list(paths), set(quiet), progress, cancel, on_provisional, claim)


def _scan(
    paths: list[str],
    quiet: set[str],
    progress: Progress | None,
    cancel: Callable[[], bool] | None,
    on_provisional: ProvisionalCallback | None,
    claim: Claim | None = None,
) -> tuple[list[FrameRef], list[LoadError]]:
    n = len(paths)
    results: list[ScanResult | None] = [None] * n
    done = 0

    def report() -> None:
        if progress is not None and ((done - 1) % 16 == 0 or done == n):
            progress(done, n, "Reading DICOM headers")

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled()

    if on_provisional is not None and n >= PROVISIONAL_MIN_FILES:
        # The middle file by name: in a name-ordered series, near where the sorted one opens.
        for i in range(n // 2, min(n, n // 2 + PROVISIONAL_TRIES)):
            check_cancel()
            results[i] = res = _scan_one(paths[i])
            done += 1
            if not isinstance(res, ReadFailure) and res and (volume := provisional_volume(res)) is not None:
                on_provisional(volume)
                break
    elif n:
        # One file on this thread first: pydicom's lazy set-up (dictionaries, decoder plugins)
        # then happens once, before the pool's threads use it.
        check_cancel()
        results[0] = _scan_one(paths[0])
        done += 1
        report()

    rest = [i for i in range(n) if results[i] is None]
    workers = _workers(len(rest))

    def task(i: int) -> tuple[int, ScanResult]:
        return i, _scan_one(paths[i])

    pool = ThreadPoolExecutor(workers, thread_name_prefix="dicom-scan") if workers > 1 else None
    try:
        for i, res in (pool.map(task, rest) if pool is not None else map(task, rest)):
            # On cancel, shutdown(cancel_futures=True) below drops every task not started yet.
            check_cancel()
            results[i] = res
            done += 1
            report()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    frames: list[FrameRef] = []
    errors: list[LoadError] = []
    for path, res in zip(paths, results):
        if res is not None and claim is not None and claim(path, res):
            continue
        if isinstance(res, ReadFailure):
            if not (path in quiet and res.reason == "not a DICOM file"):
                errors.append(LoadError(path, res.reason))
        elif res is not None:
            frames.extend(res)
    return frames, errors


__all__ = ["PROVISIONAL_MIN_FILES", "Claim", "ProvisionalCallback", "provisional_volume", "scan_headers"]
