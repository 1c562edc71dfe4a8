"""DICOM overlay planes (60xx) as the viewer and ``info`` use them: one bitmap per plane and
slice. No pydicom here, so the GUI can draw them without loading the DICOM stack at start-up
(reading is :mod:`app.study.dicom.overlay_planes`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DicomOverlay:
    """One overlay plane on one slice, positioned in that slice's pixel grid."""

    slice_index: int  # array z index of the volume it belongs to
    group: int  # 0x6000..0x601E
    origin: tuple[int, int]  # (row, column) of the bitmap's top-left pixel, 0-based
    bitmap: np.ndarray  # (rows, cols) bool
    label: str  # OverlayDescription / OverlayLabel, or "overlay 6000"
    kind: str  # "G" graphics or "R" ROI


def overlay_count(overlays: list[DicomOverlay]) -> int:
    """Distinct overlay planes (a plane repeated on several frames counts once)."""
    return len({o.group for o in overlays})


def overlay_mask(overlays: list[DicomOverlay], k: int, shape: tuple[int, int]) -> np.ndarray | None:
    """Union of slice ``k``'s overlays as a (rows, cols) bool mask, clipped to the image."""
    mine = [o for o in overlays if o.slice_index == k]
    if not mine:
        return None
    mask = np.zeros(shape, bool)
    for o in mine:
        r0, c0 = o.origin
        h, w = o.bitmap.shape
        rs, cs = max(r0, 0), max(c0, 0)
        re_, ce = min(r0 + h, shape[0]), min(c0 + w, shape[1])
        if re_ > rs and ce > cs:
            mask[rs:re_, cs:ce] |= o.bitmap[rs - r0 : re_ - r0, cs - c0 : ce - c0]
    return mask


__all__ = ["DicomOverlay", "overlay_count", "overlay_mask"]
