"""Axial / coronal / sagittal reformats of a :class:`Volume` in radiological display
orientation, with the physical pixel aspect and the edge orientation labels (no Qt).

Display convention (as in OHIF, Weasis, RadiAnt; patient frame LPS):
- axial:    screen right = patient Left,      screen down = Posterior
- coronal:  screen right = patient Left,      screen down = Inferior
- sagittal: screen right = Posterior,         screen down = Inferior

Each array axis is matched to the patient axis it is closest to (from the direction
matrix), so a sagittally acquired series still shows a true axial view, and an in-plane
flip in the file is undone for display. The slice index of a view is always the plain
array index along the axis it steps through, so it means the same thing to the loader,
the pipeline and the viewer; the acquisition-plane view is the pipeline's display frame
(app.study.display_frame).
"""
from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

import numpy as np

from .volume import Volume

# LPS axis -> (letter for the + direction, letter for the - direction)
_LETTERS = (("L", "R"), ("P", "A"), ("S", "I"))
# Array axes are [z, y, x]; spacing/direction use (x, y, z): array axis a <-> xyz index 2 - a.


def _xyz(array_axis: int) -> int:
    return 2 - array_axis


class Plane(str, enum.Enum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# plane -> (normal patient axis, (screen-x patient axis, sign), (screen-y patient axis, sign))
_CONVENTION: dict[Plane, tuple[int, tuple[int, int], tuple[int, int]]] = {
    Plane.AXIAL: (2, (0, +1), (1, +1)),
    Plane.CORONAL: (1, (0, +1), (2, -1)),
    Plane.SAGITTAL: (0, (1, +1), (2, -1)),
}


def patient_axis_assignment(direction: np.ndarray) -> tuple[int, int, int]:
    """For each patient axis (L, P, S) the xyz array-axis index best aligned with it.

    Chosen as the permutation maximizing the summed |cosines|, so oblique acquisitions
    still get a one-to-one assignment.
    """
    d = np.abs(np.asarray(direction, dtype=float).reshape(3, 3))
    best = max(itertools.permutations(range(3)), key=lambda p: sum(d[pa, p[pa]] for pa in range(3)))
    return tuple(int(i) for i in best)  # type: ignore[return-value]


def orientation_label(vector: np.ndarray, threshold: float = 0.25) -> str:
    """Letters for an LPS direction, strongest first (e.g. ``"L"``, or ``"LP"`` if oblique)."""
    v = np.asarray(vector, dtype=float)
    order = np.argsort(-np.abs(v))
    letters = [_LETTERS[i][0 if v[i] > 0 else 1] for i in order if abs(v[i]) >= threshold]
    return "".join(letters)


@dataclass(frozen=True)
class EdgeLabels:
    left: str
    right: str
    top: str
    bottom: str


@dataclass(frozen=True)
class SliceGeometry:
    """How one plane of a volume maps to the screen.

    ``slice_axis``/``row_axis``/``col_axis`` are array axes (0 = z, 1 = y, 2 = x);
    ``row_flip``/``col_flip`` reverse the screen rows/columns.
    """

    plane: Plane
    slice_axis: int
    row_axis: int
    col_axis: int
    row_flip: bool
    col_flip: bool
    shape: tuple[int, int, int]  # array shape [z, y, x]
    spacing: tuple[float, float, float]  # (x, y, z) mm
    direction: np.ndarray

    # ----- sizes --------------------------------------------------------------------
    @property
    def num_slices(self) -> int:
        return self.shape[self.slice_axis]

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) in voxels of the displayed slice."""
        return self.shape[self.col_axis], self.shape[self.row_axis]

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """(column spacing, row spacing) in mm: screen x and y size of one voxel."""
        return self.spacing[_xyz(self.col_axis)], self.spacing[_xyz(self.row_axis)]

    @property
    def aspect(self) -> float:
        """Height/width of one displayed voxel (e.g. 5.0 / 0.57 for a coronal CT)."""
        sx, sy = self.pixel_spacing
        return sy / sx

    @property
    def physical_size(self) -> tuple[float, float]:
        """(width, height) of the slice in mm."""
        (w, h), (sx, sy) = self.image_size, self.pixel_spacing
        return w * sx, h * sy

    # ----- extraction -----------------------------------------------------------------
    def extract(self, array: np.ndarray, k: int) -> np.ndarray:
        """Slice ``k`` in screen layout [row, col] (trailing channel kept): a read-only view
        of ``array`` in every plane, never a copy (a coronal or sagittal cut of a 1 GB series
        costs nothing); read-only so that no caller can write into the volume through it."""
        index: list[int | slice] = [slice(None)] * array.ndim
        index[self.slice_axis] = int(k)  # basic indexing: a view (np.take would copy)
        img = array[tuple(index)]
        # The two remaining axes keep their relative order; transpose if rows come second.
        remaining = [a for a in range(3) if a != self.slice_axis]
        if remaining.index(self.row_axis) != 0:
            img = np.swapaxes(img, 0, 1)
        if self.row_flip:
            img = img[::-1]
        if self.col_flip:
            img = img[:, ::-1]
        img.flags.writeable = False  # this view object only; the volume itself stays writable
        return img

    # ----- coordinates ----------------------------------------------------------------
    def voxel_index(self, k: int, col: float, row: float) -> tuple[int, int, int]:
        """Screen pixel (col, row) of slice ``k`` -> voxel index (i, j, k) in (x, y, z) order."""
        w, h = self.image_size
        c = int(np.floor(col))
        r = int(np.floor(row))
        if self.col_flip:
            c = w - 1 - c
        if self.row_flip:
            r = h - 1 - r
        idx = [0, 0, 0]  # array order [z, y, x]
        idx[self.slice_axis] = int(k)
        idx[self.row_axis] = r
        idx[self.col_axis] = c
        return idx[2], idx[1], idx[0]

    def screen_position(self, ijk: tuple[float, float, float]) -> tuple[int, float, float]:
        """Voxel index (x, y, z) -> (slice k, col, row) of this view (continuous)."""
        arr = (ijk[2], ijk[1], ijk[0])
        w, h = self.image_size
        col = float(arr[self.col_axis])
        row = float(arr[self.row_axis])
        if self.col_flip:
            col = w - 1 - col
        if self.row_flip:
            row = h - 1 - row
        return int(round(arr[self.slice_axis])), col, row

    def screen_axis_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """LPS unit vectors of screen +x (right) and +y (down)."""
        right = self.direction[:, _xyz(self.col_axis)] * (-1.0 if self.col_flip else 1.0)
        down = self.direction[:, _xyz(self.row_axis)] * (-1.0 if self.row_flip else 1.0)
        return right, down

    def edge_labels(self) -> EdgeLabels:
        right, down = self.screen_axis_vectors()
        return EdgeLabels(
            left=orientation_label(-right),
            right=orientation_label(right),
            top=orientation_label(-down),
            bottom=orientation_label(down),
        )


def slice_geometry(volume: Volume, plane: Plane | str) -> SliceGeometry:
    """The display geometry of ``plane`` for ``volume``."""
    plane = Plane(plane)
    direction = np.asarray(volume.direction, dtype=float).reshape(3, 3)
    assign = patient_axis_assignment(direction)  # patient axis -> xyz index
    normal, (cx_axis, cx_sign), (ry_axis, ry_sign) = _CONVENTION[plane]

    def array_axis(patient_axis: int) -> int:
        return 2 - assign[patient_axis]

    def flip(patient_axis: int, want_sign: int) -> bool:
        xyz = assign[patient_axis]
        return bool(np.sign(direction[patient_axis, xyz]) != want_sign)

    return SliceGeometry(
        plane=plane,
        slice_axis=array_axis(normal),
        row_axis=array_axis(ry_axis),
        col_axis=array_axis(cx_axis),
        row_flip=flip(ry_axis, ry_sign),
        col_flip=flip(cx_axis, cx_sign),
        shape=tuple(int(s) for s in volume.array.shape[:3]),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in volume.spacing),  # type: ignore[arg-type]
        direction=direction,
    )


def is_single_image(volume: Volume) -> bool:
    """Only its own plane can be shown: a 2-D image (one slice), or a temporal cine whose
    frames are one position over time (a coronal/sagittal cut would mix time into space)."""
    return volume.num_slices == 1 or volume.temporal


def native_plane(volume: Volume) -> Plane:
    """The plane the series was acquired in (the one stepping through array z)."""
    for plane in Plane:
        if slice_geometry(volume, plane).slice_axis == 0:
            return plane
    return Plane.AXIAL
