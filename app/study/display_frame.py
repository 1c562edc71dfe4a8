"""The display frame: slice ``k`` of a volume's acquisition plane exactly as the viewer shows
it (radiological orientation, in-plane flips of the file undone, axes transposed where the
file stores columns first). No Qt.

Everything a run sees and claims lives in this frame: the model input, every mask, every box
(entity, clinician, ``ask --box``, ``segment --box``), the zoom-in crop and ``slice.png``. So
the same physical study stored as DICOM, NRRD or RAS NIfTI gives the models identical pixels,
and "left"/"top" in an answer mean the screen's left and top. Voxel indices are reached only
through :meth:`DisplayFrame.to_array` / :meth:`DisplayFrame.box_to_array` /
:meth:`DisplayFrame.voxel_index`, where a voxel index is genuinely needed (writing a mask into
the source grid, reading a label volume).

Coordinates: ``image(k)[row, col]``; a box is ``(x0, y0, x1, y1)`` with x = column to the
right, y = row down, x1/y1 exclusive (pixel edges, not centres).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .reformat import Plane, SliceGeometry, native_plane, slice_geometry
from .volume import Volume

BoxT = tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class DisplayFrame:
    """How slice ``k`` of ``volume.slice(k)`` (array layout ``[y, x]``) maps to the displayed
    slice ``[row, col]`` of the acquisition-plane view."""

    volume: Volume
    geometry: SliceGeometry

    # ----- sizes ----------------------------------------------------------------------
    @property
    def plane(self) -> Plane:
        return self.geometry.plane

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the displayed slice."""
        w, h = self.geometry.image_size
        return int(h), int(w)

    @property
    def transposed(self) -> bool:
        """Display rows run along array x (the file stores the screen's columns first)."""
        return self.geometry.row_axis == 2

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """(column, row) size of one displayed pixel in mm (the volume's spacing, permuted)."""
        return self.geometry.pixel_spacing

    # ----- pixels ---------------------------------------------------------------------
    def image(self, k: int) -> np.ndarray:
        """Modality values of slice ``k`` in display layout [row, col] (or [row, col, 3]); a view."""
        return self.geometry.extract(self.volume.array, k)

    def from_array(self, img: np.ndarray) -> np.ndarray:
        """A 2-D array in ``volume.slice(k)`` layout [y, x(, C)] -> display layout (a view)."""
        a = np.asarray(img)
        self._check(a.shape[:2], self.array_shape, "array")
        return self.geometry.extract(a[None], 0)

    def to_array(self, img: np.ndarray) -> np.ndarray:
        """A 2-D display-frame array [row, col(, C)] -> ``volume.slice(k)`` layout [y, x(, C)]:
        the exact inverse of :meth:`image` / :meth:`from_array` (a view)."""
        a = np.asarray(img)
        self._check(a.shape[:2], self.shape, "display")
        g = self.geometry
        if g.col_flip:
            a = a[:, ::-1]
        if g.row_flip:
            a = a[::-1]
        if self.transposed:
            a = np.swapaxes(a, 0, 1)
        return a

    @property
    def array_shape(self) -> tuple[int, int]:
        """(y, x) of ``volume.slice(k)``."""
        return int(self.geometry.shape[1]), int(self.geometry.shape[2])

    # ----- boxes ----------------------------------------------------------------------
    def box_from_array(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A box in ``volume.slice(k)`` pixels (x = array column, y = array row) -> display."""
        x0, y0, x1, y1 = (float(v) for v in box)
        if self.transposed:  # display col <- array y, display row <- array x
            x0, y0, x1, y1 = y0, x0, y1, x1
        return self._flip_box((x0, y0, x1, y1))

    def box_to_array(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A display-frame box -> the same pixels as a box in ``volume.slice(k)`` layout."""
        c0, r0, c1, r1 = self._flip_box(tuple(float(v) for v in box))
        if self.transposed:
            return r0, c0, r1, c1
        return c0, r0, c1, r1

    def _flip_box(self, box: tuple[float, ...]) -> tuple[float, float, float, float]:
        # Exclusive edges: edge e of n maps to n - e when flipped (an involution).
        h, w = self.shape
        c0, r0, c1, r1 = box
        if self.geometry.col_flip:
            c0, c1 = w - c1, w - c0
        if self.geometry.row_flip:
            r0, r1 = h - r1, h - r0
        return c0, r0, c1, r1

    # ----- voxels ---------------------------------------------------------------------
    def voxel_index(self, k: int, col: float, row: float) -> tuple[int, int, int]:
        """Display pixel (col, row) of slice ``k`` -> voxel index (i, j, k) in (x, y, z) order."""
        return self.geometry.voxel_index(k, col, row)

    @staticmethod
    def _check(got: tuple[int, ...], want: tuple[int, int], what: str) -> None:
        if tuple(got) != tuple(want):
            raise ValueError(f"a {tuple(got)} image is not in the {what} layout {tuple(want)} of this slice")


def display_frame(volume: Volume) -> DisplayFrame:
    """The display frame of ``volume``'s acquisition-plane slices (``native_plane``)."""
    return DisplayFrame(volume, slice_geometry(volume, native_plane(volume)))


__all__ = ["DisplayFrame", "display_frame"]
