"""Fill one pre-allocated volume array from a sorted stack of frames.

The array is allocated once in its final dtype and each decoded frame is converted
straight into its slice, so a series is never held twice (no list of slices + stack).
Greyscale dtype: int16 when rescale slope/intercept are integers (a frame whose values
overflow int16 upgrades the array to float32 once), else float32.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..display import default_window
from ..limits import over_cap
from ..volume import LoadError, PatientInfo, SourceFormat, Volume, Window
from .errors import ReadFailure
from .geometry import Stack
from .attributes import _text
from .frame_ref import FrameRef
from .frame_rate import frame_rate
from .presentation import apply_presentation
from .pixels import can_read_native, is_color, iter_file_frames, modality_values, read_frame, stored_range, to_rgb8

PartialCallback = Callable[[Volume, int, int], None]
_I16 = np.iinfo(np.int16)


class Cancelled(Exception):
    """Raised inside the reader when the caller's cancel() returns True."""


def _integral(x: float) -> bool:
    return abs(x - round(x)) < 1e-6


def _wrap16(x: int) -> np.int16:
    return np.int16(((x + 32768) % 65536) - 32768)


class SliceStore:
    """Owns the volume array and converts each frame into its final dtype in place."""

    def __init__(self, frames: list[FrameRef]) -> None:
        first = frames[0]
        self.color = is_color(first)
        n, rows, cols = len(frames), first.rows, first.cols
        # MONOCHROME1 is inverted on display only (presentation.py): values stay as stored.
        self.invert = False
        self.invert_sum = sum(stored_range(first)) if self.invert else 0.0
        if self.color:
            self.array = np.zeros((n, rows, cols, 3), np.uint8)
        else:
            integral = all(_integral(f.slope) and _integral(f.intercept) for f in frames)
            use_int = integral and not any(f.float_pixels for f in frames) and _integral(self.invert_sum)
            self.array = np.zeros((n, rows, cols), np.int16 if use_int else np.float32)
        self.upgraded = False

    def put(self, k: int, decoded: np.ndarray, ref: FrameRef, value_range: tuple[int, int] | None = None) -> None:
        """``value_range``: (min, max) of ``decoded`` when the caller already has it (see
        :func:`stored_value_range`)."""
        target = self.array[k]
        if self.color:
            target[...] = to_rgb8(decoded, ref)
            return
        if decoded.ndim == 3:  # colour frame in a greyscale stack: luminance
            decoded = decoded[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if decoded.shape != target.shape:
            raise ReadFailure(f"frame size {decoded.shape} differs from the series {target.shape}")
        values, slope, intercept = modality_values(decoded, ref)
        if values is not decoded:
            value_range = None  # a Modality LUT made new values
        if self.array.dtype == np.int16 and not self._put_int16(k, values, slope, intercept, value_range):
            self._upgrade()
        if self.array.dtype == np.float32:
            t = self.array[k]
            np.multiply(values, np.float32(slope), out=t, casting="unsafe")
            if intercept:
                t += np.float32(intercept)
            if self.invert:
                np.subtract(np.float32(self.invert_sum), t, out=t)

    def _put_int16(self, k: int, values: np.ndarray, slope: float, intercept: float,
                   value_range: tuple[int, int] | None = None) -> bool:
        """Integer rescale in int16; False when the result would not fit."""
        if values.dtype.kind not in "ui" or not (_integral(slope) and _integral(intercept)):
            return False
        s, b = int(round(slope)), int(round(intercept))
        vmin, vmax = value_range if value_range is not None else (int(values.min()), int(values.max()))
        lo, hi = sorted((vmin * s + b, vmax * s + b))
        if self.invert:
            lo, hi = int(self.invert_sum) - hi, int(self.invert_sum) - lo
        if lo < _I16.min or hi > _I16.max:
            return False
        t = self.array[k]
        if self.invert:
            t[...] = int(self.invert_sum) - (values.astype(np.int64) * s + b)
            return True
        # Modular int16 arithmetic is exact because the final values fit (checked above).
        t[...] = values.astype(np.int16, copy=False) if values.dtype.itemsize <= 2 else values.astype(np.int16)
        if s != 1:
            t *= _wrap16(s)
        if b:
            t += _wrap16(b)
        return True

    def _upgrade(self) -> None:
        self.array = self.array.astype(np.float32)
        self.upgraded = True


def stored_value_range(decoded: np.ndarray) -> tuple[int, int] | None:
    """(min, max) of an integer greyscale frame, for :meth:`SliceStore.put`; computed in the
    reading threads so that only the conversion itself is left to the filling thread."""
    if decoded.ndim != 2 or decoded.dtype.kind not in "ui" or decoded.size == 0:
        return None
    return int(decoded.min()), int(decoded.max())


def _patient(ds) -> PatientInfo:  # type: ignore[no-untyped-def]
    return PatientInfo(
        name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        birth_date=_text(ds, "PatientBirthDate"),
        sex=_text(ds, "PatientSex"),
        study_date=_text(ds, "StudyDate"),
        accession=_text(ds, "AccessionNumber"),
        institution=_text(ds, "InstitutionName"),
    )


def _file_window(ref: FrameRef, store: SliceStore) -> Window | None:
    if ref.window is None or store.color:
        return None
    c, w = ref.window
    if store.invert:
        # Inverted values show like MONOCHROME2; mirror the file's centre with them.
        c = store.invert_sum - c
    return Window(float(c), float(w), "file")


def _description(ref: FrameRef, label: str) -> str:
    ds = ref.header
    desc = _text(ds, "SeriesDescription") or _text(ds, "ProtocolName") or _text(ds, "StudyDescription")
    return f"{desc} [{label}]" if label else desc


# FrameTime, FrameTimeVector, CineRate, ActualFrameDuration: a multi-frame file stepping
# through time. FrameIncrementPointer naming one of them says so explicitly.
_TIME_TAGS = (0x00181063, 0x00181065, 0x00180040, 0x00181242)


def is_temporal(stack: Stack) -> bool:
    """A cine: one multi-frame instance whose frames step through time at one position.

    Its frames either carry no per-frame position or all share one (e.g. ultrasound, XA,
    cardiac cine) and the header declares a frame time or cine rate. A stack with distinct
    slice positions is spatial whatever else it declares."""
    frames = stack.frames
    if len(frames) < 2 or len({f.path for f in frames}) != 1:
        return False
    positions = {tuple(round(v, 3) for v in f.position) for f in frames if f.position is not None}
    if len(positions) > 1:
        return False
    header = frames[0].header
    pointer = header.get("FrameIncrementPointer")
    # One tag (an int) or several (a pydicom MultiValue, which is not a list).
    pointers = [] if pointer is None else [int(pointer)] if isinstance(pointer, int) else [int(t) for t in pointer]
    if any(t in _TIME_TAGS for t in pointers):
        return True
    return any(t in header for t in _TIME_TAGS)


# Threads reading pixel data; 1 reads every frame on the filling thread (the benchmark's reference).
MAX_WORKERS = 4


def _workers(n_tasks: int) -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1, n_tasks // 4))


def build_volume(
    stack: Stack,
    *,
    cancel: Callable[[], bool] | None = None,
    on_partial: PartialCallback | None = None,
    on_slice: Callable[[str], None] | None = None,
) -> tuple[Volume | None, list[LoadError]]:
    frames = stack.frames
    first = frames[0]
    # A series of many files can exceed the cap although each file is small (limits.py).
    if (too_big := over_cap((first.cols, first.rows, len(frames)), "series declares")):
        where = os.path.dirname(first.path) or first.path
        return None, [LoadError(where, too_big, series_uid=first.series_uid)]
    store = SliceStore(frames)
    volume = Volume(
        array=store.array,
        spacing=stack.spacing,
        origin=stack.origin,
        direction=stack.direction,
        modality=first.modality,
        series_uid=first.series_uid,
        study_uid=first.study_uid,
        description=_description(first, stack.label),
        source_format=SourceFormat.DICOM,
        source_files=list(dict.fromkeys(f.path for f in frames)),
        headers=[f.header for f in frames],
        frames=first.n_frames,
        patient=_patient(first.header),
        warnings=list(stack.warnings),
        temporal=is_temporal(stack),
    )
    file_window = _file_window(first, store)
    window_set: list[bool] = []
    if file_window or store.color:
        volume.window = file_window or Window(127.5, 255.0, "RGB")
        window_set.append(True)
    apply_presentation(volume, frames)
    if (rate := frame_rate(first.header)) is not None and volume.num_slices > 1:
        volume.frame_rate, volume.frame_rate_source = rate.fps, rate.source

    errors: list[LoadError] = []
    failed: set[int] = set()
    total = len(frames)
    done = 0
    last_report = 0.0
    last_done = 0

    def stored(k: int) -> None:
        nonlocal done, last_report, last_done
        done += 1
        if on_slice is not None:
            on_slice(frames[k].path)
        if store.array is not volume.array:  # int16 -> float32 upgrade
            volume.array = store.array
        if not window_set and k not in failed:
            # Until the whole series is in, a window from the first slice is good enough.
            volume.window = default_window(volume.modality, store.array[k])
            window_set.append(True)
        if on_partial is None or not window_set:
            return
        now = time.perf_counter()
        if last_done == 0 or done == total or (done - last_done >= max(1, total // 8) and now - last_report > 0.05):
            on_partial(volume, done, total)
            last_report, last_done = now, done

    def fail(k: int, exc: ReadFailure) -> None:
        failed.add(k)
        errors.append(LoadError(frames[k].path, exc.reason, series_uid=first.series_uid))

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled()

    by_file: dict[str, list[int]] = {}
    for k, f in enumerate(frames):
        by_file.setdefault(f.path, []).append(k)
    multi = {p: ks for p, ks in by_file.items() if len(ks) > 1}
    single = [ks[0] for p, ks in by_file.items() if len(ks) == 1]

    # Multi-frame files: decode each file once, frame by frame.
    for path, ks in multi.items():
        index = {frames[k].frame: k for k in ks}
        try:
            for ref, arr in iter_file_frames(path, [frames[k] for k in ks]):
                check_cancel()
                k = index[ref.frame]
                try:
                    store.put(k, arr, ref)
                except ReadFailure as exc:
                    fail(k, exc)
                stored(k)
        except ReadFailure as exc:
            for k in ks:
                if k not in failed:
                    fail(k, exc)
            break

    # Single-frame files, in a small thread pool: reading (uncompressed) or decoding, and
    # each frame's value range, release the GIL for most of the work; this thread converts
    # each frame into its slice in order. Uncompressed files first: the cheap ones.
    native = [k for k in single if can_read_native(frames[k])]
    coded = [k for k in single if not can_read_native(frames[k])]
    if native or coded:
        _decode_parallel(native + coded, frames, store, stored, fail, check_cancel)

    if len(failed) == total:
        return None, errors
    volume.array = store.array
    if failed:
        volume.warnings.append(f"{len(failed)} of {total} slices could not be read and are blank")
    volume.window = file_window or (volume.window if store.color else default_window(volume.modality, store.array))
    return volume, errors


def _decode_parallel(ks, frames, store, stored, fail, check_cancel) -> None:  # type: ignore[no-untyped-def]
    def decode(k: int):  # type: ignore[no-untyped-def]
        try:
            arr = read_frame(frames[k])
            return k, arr, stored_value_range(arr)
        except ReadFailure as exc:
            return k, exc, None

    workers = _workers(len(ks))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="dicom-decode") if workers > 1 else None
    try:
        for k, res, value_range in _in_order(pool, decode, ks, ahead=2 * workers):
            check_cancel()
            if isinstance(res, ReadFailure):
                fail(k, res)
            else:
                try:
                    store.put(k, res, frames[k], value_range)
                except ReadFailure as exc:
                    fail(k, exc)
            stored(k)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _in_order(pool, fn, items, ahead: int):  # type: ignore[no-untyped-def]
    """``map(fn, items)`` on ``pool`` (or serially without one), in order, with at most
    ``ahead`` results waiting: decoded frames never pile up beyond a few slices' memory
    when this thread fills slower than the pool decodes."""
    if pool is None:
        yield from map(fn, items)
        return
    pending: deque = deque()
    it = iter(items)
    for item in it:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.popleft().result()
        nxt = next(it, _END)
        if nxt is not _END:
            pending.append(pool.submit(fn, nxt))
        yield result


_END = object()


__all__ = ["Cancelled", "SliceStore", "build_volume", "stored_value_range"]
