"""Value checks on a file's header before any pixel is read.

Why: a NaN rescale turns every voxel of a volume into NaN (and breaks windowing for the
whole series), a NaN position or orientation makes the slice order and the origin
meaningless. Such a file is refused with its reason and the rest of the study still loads.
Values that only describe display or spacing (window, pixel spacing, slice thickness) are
dropped instead, with a note saying what was assumed, because the pixels are still right.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
from pydicom.dataset import Dataset

from .attributes import _floats, _num
from .errors import ReadFailure
from .frame_ref import FrameRef


def _finite(values: Iterable[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def check_frames(frames: list[FrameRef]) -> None:
    """Raises ReadFailure for the first frame with a non-finite rescale, position or a
    non-finite/degenerate orientation."""
    for f in frames:
        if not _finite((f.slope, f.intercept)):
            raise ReadFailure(f"non-finite RescaleSlope/RescaleIntercept ({f.slope:g}, {f.intercept:g})")
        if f.position is not None and not _finite(f.position):
            raise ReadFailure(f"non-finite ImagePositionPatient {_fmt(f.position)}")
        if f.orientation is not None:
            o = np.asarray(f.orientation, float)
            if not _finite(o):
                raise ReadFailure(f"non-finite ImageOrientationPatient {_fmt(f.orientation)}")
            if min(np.linalg.norm(o[:3]), np.linalg.norm(o[3:])) < 1e-6 or np.linalg.norm(np.cross(o[:3], o[3:])) < 1e-6:
                raise ReadFailure(f"degenerate ImageOrientationPatient {_fmt(f.orientation)} (zero or parallel axes)")


def _fmt(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def positive_or_none(value: float | None) -> float | None:
    """A spacing-like value that is usable (finite and > 0), else None."""
    return value if value is not None and math.isfinite(value) and value > 0 else None


def value_notes(ds: Dataset | None) -> tuple[str, ...]:
    """What was ignored in ``ds`` (present but unusable) and what is assumed instead."""
    if ds is None:
        return ()
    notes = []
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        v = _floats(ds, kw, 2)
        if v is not None and not (_finite(v) and v[0] > 0 and v[1] > 0):
            notes.append(f"invalid {kw} {_fmt(v)} ignored")
    for kw in ("SliceThickness", "SpacingBetweenSlices"):
        v1 = _num(ds, kw)
        if v1 is not None and positive_or_none(v1) is None:
            notes.append(f"invalid {kw} {v1:g} ignored")
    c, w = _num(ds, "WindowCenter"), _num(ds, "WindowWidth")
    if (c is not None and not math.isfinite(c)) or (w is not None and not (math.isfinite(w) and w > 0)):
        notes.append(f"invalid file window (center {c:g}, width {w:g}) ignored; automatic window used"
                     if c is not None and w is not None else "invalid file window ignored; automatic window used")
    return tuple(notes)


__all__ = ["check_frames", "positive_or_none", "value_notes"]
