"""Size of a 3-D label on a volume's voxel grid (no Qt): volume, extent and largest in-plane
diameter, in millimetres from the volume's own spacing, or in voxels/pixels when the file has
none (``spacing_source == "none"``: the spacing is then a placeholder and mm would be invented).

The mask is in array layout ``[z, y, x]`` (``volume.array``'s grid); ``volume.spacing`` is
``(x, y, z)``. The in-plane diameter is measured on array slices ``[y, x]`` with ``(sx, sy)``;
flips and transposes of the display frame do not change a length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .volume import Volume


@dataclass(frozen=True)
class LesionSize:
    voxels: int
    slices: tuple[int, int] | None  # (first, last) slice index holding the label; None if empty
    extent_slices: int
    calibrated: bool  # False: no spacing in the file; every *_mm / volume_ml below is None
    volume_ml: float | None
    extent_mm: float | None  # extent_slices x slice spacing (slab thickness the label covers)
    diameter_slice: int | None  # the slice with the largest cross-section
    largest_diameter_mm: float | None  # longest chord of that cross-section, in mm
    largest_diameter_px: float  # the same chord in pixels (always known)


def calibrated(volume: Volume) -> bool:
    return volume.spacing_source != "none"


def feret_diameter(mask2d: np.ndarray, sx: float = 1.0, sy: float = 1.0) -> float:
    """Longest distance between two points of the pixelated region (each pixel the square
    ``[c, c+1) x [r, r+1)``), with columns scaled by ``sx`` and rows by ``sy``: the maximal
    chord is between two corners of boundary pixels, so the corners' convex hull is searched."""
    rows, cols = np.nonzero(np.asarray(mask2d, bool))
    if rows.size == 0:
        return 0.0
    corners = np.concatenate([np.stack([cols + dc, rows + dr], axis=1) for dc in (0, 1) for dr in (0, 1)])
    pts = np.unique(corners, axis=0).astype(np.float64) * np.array([sx, sy])
    hull = _convex_hull(pts)
    d = hull[:, None, :] - hull[None, :, :]
    return float(math.sqrt(float((d ** 2).sum(axis=2).max())))


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Andrew's monotone chain (points as (n, 2)); the hull keeps the maximal chord's ends."""
    p = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    if len(p) <= 2:
        return p

    def half(seq: np.ndarray) -> list:
        out: list = []
        for q in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (q[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (q[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(q)
        return out

    lower, upper = half(p), half(p[::-1])
    return np.array(lower[:-1] + upper[:-1])


def lesion_size(mask: np.ndarray, volume: Volume) -> LesionSize:
    """Volume, extent and largest in-plane diameter of ``mask`` (``volume.array``'s [z, y, x])."""
    m = np.asarray(mask, bool)
    if m.shape != tuple(volume.array.shape[:3]):
        raise ValueError(f"a {m.shape} mask is not on this volume's {tuple(volume.array.shape[:3])} grid")
    cal = calibrated(volume)
    sx, sy, sz = (float(s) for s in volume.spacing)
    areas = m.reshape(m.shape[0], -1).sum(axis=1)
    voxels = int(areas.sum())
    present = np.flatnonzero(areas)
    if present.size == 0:
        return LesionSize(0, None, 0, cal, 0.0 if cal else None, 0.0 if cal else None, None, 0.0 if cal else None, 0.0)
    first, last = int(present[0]), int(present[-1])
    k = int(areas.argmax())
    extent = last - first + 1
    px = feret_diameter(m[k])
    return LesionSize(
        voxels=voxels, slices=(first, last), extent_slices=extent, calibrated=cal,
        volume_ml=voxels * sx * sy * sz / 1000.0 if cal else None,
        extent_mm=extent * sz if cal else None,
        diameter_slice=k,
        largest_diameter_mm=feret_diameter(m[k], sx, sy) if cal else None,
        largest_diameter_px=px,
    )
