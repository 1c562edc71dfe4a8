"""A viewing transform of a 2-D slice view: flips and quarter-turn rotations (no Qt).

It is applied on the screen *after* the standard radiological display orientation of
:mod:`.reformat`: the slice is laid out as usual, then flipped/rotated about the viewport
centre. The models never see it (they read the acquisition-plane slice in standard
orientation); the view's mapping, edge labels and everything drawn over the image follow it.

Represented as a 2x2 integer matrix ``m`` acting on screen offsets (x right, y down): a
transformed offset is ``m @ (x, y)``. Flips and quarter turns are the 8 symmetries of the
square, so every composition stays one of them and the inverse is the transpose.
"""
from __future__ import annotations

from dataclasses import dataclass

from .reformat import EdgeLabels

_IDENTITY = (1, 0, 0, 1)


def _mul(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """2x2 matrix product ``a @ b`` (row-major tuples)."""
    return (a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3])


_FLIP_H = (-1, 0, 0, 1)
_FLIP_V = (1, 0, 0, -1)
_ROT_CW = (0, -1, 1, 0)  # screen y points down: right -> bottom -> left -> top
_ROT_CCW = (0, 1, -1, 0)


@dataclass(frozen=True)
class ViewTransform:
    m: tuple[int, int, int, int] = _IDENTITY

    # ----- composition (each acts on what the screen shows now) ------------------------
    def flipped_horizontally(self) -> "ViewTransform":
        return ViewTransform(_mul(_FLIP_H, self.m))

    def flipped_vertically(self) -> "ViewTransform":
        return ViewTransform(_mul(_FLIP_V, self.m))

    def rotated(self, clockwise: bool = True) -> "ViewTransform":
        return ViewTransform(_mul(_ROT_CW if clockwise else _ROT_CCW, self.m))

    # ----- properties ------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        return self.m == _IDENTITY

    @property
    def swaps_axes(self) -> bool:
        """A quarter turn: the slice's width is shown vertically."""
        return self.m[0] == 0

    @property
    def mirrored(self) -> bool:
        """Determinant -1: the view is a mirror image of the standard one."""
        a, b, c, d = self.m
        return a * d - b * c < 0

    def apply(self, x: float, y: float) -> tuple[float, float]:
        """Offset in the standard layout -> offset on the transformed screen."""
        a, b, c, d = self.m
        return a * x + b * y, c * x + d * y

    def invert(self, x: float, y: float) -> tuple[float, float]:
        """Offset on the transformed screen -> offset in the standard layout (transpose)."""
        a, b, c, d = self.m
        return a * x + c * y, b * x + d * y

    def shown_size(self, width: float, height: float) -> tuple[float, float]:
        """(width, height) on screen of a ``width`` x ``height`` slice."""
        return (height, width) if self.swaps_axes else (width, height)

    def apply_to_array(self, img):
        """``img`` ([row, col, ...] in the standard layout) as the transformed screen shows
        it: exact pixel moves (a flip, then quarter turns), no resampling."""
        import numpy as np

        out = img[:, ::-1] if self.mirrored else img
        return np.rot90(out, k=-(self.rotation_degrees() // 90))

    # ----- what it means ---------------------------------------------------------------
    def rotation_degrees(self) -> int:
        """Clockwise quarter turn (0/90/180/270) after an optional left-right flip:
        ``m = R(rotation) @ F`` with ``F`` the flip when :attr:`mirrored`."""
        base = _mul(self.m, _FLIP_H) if self.mirrored else self.m  # F is its own inverse
        turns = {(1, 0, 0, 1): 0, _ROT_CW: 90, (-1, 0, 0, -1): 180, _ROT_CCW: 270}
        return turns[base]

    def describe(self) -> str:
        """Plain words, e.g. "flipped left-right", "rotated 90° clockwise"; "" for none."""
        if self.is_identity:
            return ""
        if self.m == _FLIP_H:
            return "flipped left-right"
        if self.m == _FLIP_V:
            return "flipped top-bottom"
        deg = self.rotation_degrees()
        turn = {90: "rotated 90\u00b0 clockwise", 180: "rotated 180\u00b0", 270: "rotated 90\u00b0 counter-clockwise"}[deg]
        return f"flipped left-right, then {turn}" if self.mirrored else turn


IDENTITY = ViewTransform()


def models_view_note(t: ViewTransform, inverted: bool) -> str:
    """The sentence the Ask panel shows when the user's view is not what the models read
    ("" when it is): the models get the acquisition-plane slice in standard orientation,
    with the file's grey scale."""
    if t.is_identity and not inverted:
        return ""
    yours = " and ".join(x for x in (t.describe(), "inverted" if inverted else "") if x)
    what = ", ".join(x for x in ("in standard orientation" if not t.is_identity else "",
                                 "not inverted" if inverted else "") if x)
    return f"The models see the slice {what} (your view is {yours})."

# Screen sides as unit offsets (x right, y down).
_SIDES = {"left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1)}
_BY_OFFSET = {v: k for k, v in _SIDES.items()}


def transform_edge_labels(labels: EdgeLabels, t: ViewTransform) -> EdgeLabels:
    """The edge labels of the transformed view: each screen side shows the label of the
    standard layout's side that the transform brought there (exact for labels derived
    from direction vectors and for PatientOrientation codes alike)."""
    if t.is_identity:
        return labels
    out = {}
    for side, (x, y) in _SIDES.items():
        sx, sy = t.invert(x, y)
        out[side] = getattr(labels, _BY_OFFSET[(int(sx), int(sy))])
    return EdgeLabels(**out)


__all__ = ["IDENTITY", "ViewTransform", "models_view_note", "transform_edge_labels"]
