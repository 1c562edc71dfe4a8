"""DICOM overlay planes (groups 6000-601E): graphics the modality burned into the header
(e.g. a Siemens MR "marked lesion" circle), read as small boolean bitmaps per frame.

Why a header-time read: the overlay data lies before the pixel data, so the header scan
already holds it; decoding costs one bit-unpack per plane, never the image.
"""
from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from ..limits import over_cap
from ..overlay_planes import DicomOverlay
from .errors import one_line


OVERLAY_GROUPS = tuple(range(0x6000, 0x6020, 2))


def _declared_problem(ds: Dataset, group: int) -> str | None:
    """Why an overlay plane is not decoded (checked before anything is allocated)."""
    def us(elem: int) -> int:
        try:
            return int(ds[(group, elem)].value) if (group, elem) in ds else 0
        except (TypeError, ValueError):
            return 0

    rows, cols, frames = us(0x0010), us(0x0011), max(us(0x0015), 1)
    if rows <= 0 or cols <= 0:
        return f"overlay {group:04X} ignored: no OverlayRows/OverlayColumns"
    if (too_big := over_cap((cols, rows, frames), f"overlay {group:04X} declares")):
        return too_big
    have = len(ds[(group, 0x3000)].value or b"")
    if have * 8 < rows * cols * frames:
        return f"overlay {group:04X} ignored: OverlayData holds {have} bytes, {(rows * cols * frames + 7) // 8} needed"
    return None


class _Decoded:
    """Each file's overlay planes are decoded once, however many of its frames ask."""

    def __init__(self) -> None:
        self.bits: dict[tuple[int, int], np.ndarray | None] = {}
        self.notes: list[str] = []

    def get(self, ds: Dataset, group: int) -> np.ndarray | None:
        key = (id(ds), group)
        if key not in self.bits:
            problem = _declared_problem(ds, group)
            bits = None
            if problem is None:
                try:
                    bits = ds.overlay_array(group)
                except Exception as exc:  # a malformed overlay must not stop the image opening
                    problem = f"overlay {group:04X} ignored: {one_line(exc, 100)}"
            if problem and problem not in self.notes:
                self.notes.append(problem)
            self.bits[key] = bits
        return self.bits[key]


def _planes(ds: Dataset, frame: int, cache: _Decoded) -> list[tuple[int, tuple[int, int], np.ndarray, str, str]]:
    out = []
    for group in OVERLAY_GROUPS:
        if (group, 0x3000) not in ds:
            continue
        bits = cache.get(ds, group)
        if bits is None:
            continue
        if bits.ndim == 3:  # multi-frame overlay: one bitmap per frame
            # ImageFrameOrigin (60xx,0051): the 1-based image frame of the overlay's first frame.
            origin_frame = int(ds[(group, 0x0051)].value) if (group, 0x0051) in ds else 1
            idx = frame - (origin_frame - 1)
            if not 0 <= idx < bits.shape[0]:
                continue
            bits = bits[idx]
        elif frame > 0 and (group, 0x0015) not in ds:
            continue  # a single-frame overlay of a multi-frame file applies to the first frame
        org = ds.get((group, 0x0050))
        r0, c0 = (int(org.value[0]) - 1, int(org.value[1]) - 1) if org is not None and len(org.value) == 2 else (0, 0)
        label = ""
        for tag in ((group, 0x0022), (group, 0x1500)):
            if tag in ds and str(ds[tag].value).strip():
                label = str(ds[tag].value).strip()
                break
        kind = str(ds[(group, 0x0040)].value).strip() if (group, 0x0040) in ds else "G"
        out.append((group, (r0, c0), bits.astype(bool), label or f"overlay {group:04X}", kind))
    return out


def read_overlays(headers: list[tuple[Dataset, int]]) -> tuple[list[DicomOverlay], list[str]]:
    """(overlays of each slice, one-line notes on planes that were ignored); ``headers``
    is (dataset, frame index in its file) per array z."""
    out: list[DicomOverlay] = []
    cache = _Decoded()
    for k, (ds, frame) in enumerate(headers):
        for group, origin, bits, label, kind in _planes(ds, frame, cache):
            if bits.any():
                out.append(DicomOverlay(k, group, origin, bits, label, kind))
    return out, cache.notes


__all__ = ["OVERLAY_GROUPS", "read_overlays"]
