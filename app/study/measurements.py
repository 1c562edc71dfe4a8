"""Viewer measurements (no Qt): length, angle, rectangle and ellipse ROIs on one slice of one
view, with the numbers computed from the view's geometry and the volume's values.

A :class:`Measurement` lives in the *screen pixel* coordinates of one view (series, plane,
slice ``k``): continuous ``(col, row)`` with pixel ``(c, r)`` covering ``[c, c+1) x [r, r+1)``,
the layout of ``SliceGeometry.extract(array, k)``. Screen x and y carry the view's own
``pixel_spacing`` (column, row), which differ on a reformat (0.57 x 5.0 mm on a coronal CT).

- Lengths and angles are computed in physical space: ``(dcol * sx, drow * sy)``.
- Uncalibrated images (``spacing_source == "none"``) are measured in pixels ("px", never mm);
  ImagerPixelSpacing gives "mm at detector" (magnified by the beam geometry).
- ROI statistics run over exactly the pixels whose centres ``(c + 0.5, r + 0.5)`` lie inside
  the shape (edges included), on the volume's values: rescaled modality units (HU for CT;
  MONOCHROME1 only inverts the display, the values stay stored values). RGB images are
  measured on their BT.601 luma ``0.299 R + 0.587 G + 0.114 B``. SD is the population SD
  (``ddof=0``). The area is that of the counted pixels: ``n * sx * sy``.
"""
from __future__ import annotations

import enum
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .reformat import Plane, SliceGeometry
from .volume import Volume

Point = tuple[float, float]  # (col, row) in screen pixels of the view


class MeasureKind(str, enum.Enum):
    LENGTH = "length"
    ANGLE = "angle"
    RECTANGLE = "rectangle"
    ELLIPSE = "ellipse"

    @property
    def label(self) -> str:
        return {"length": "Length", "angle": "Angle", "rectangle": "Rectangle ROI", "ellipse": "Ellipse ROI"}[self.value]

    @property
    def points_needed(self) -> int:
        return 3 if self is MeasureKind.ANGLE else 2

    @property
    def is_roi(self) -> bool:
        return self in (MeasureKind.RECTANGLE, MeasureKind.ELLIPSE)


class LengthUnit(str, enum.Enum):
    MM = "mm"
    MM_AT_DETECTOR = "mm at detector"
    PX = "px"


LUMA_BT601 = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class Measurement:
    """One measurement drawn on slice ``slice_index`` of ``plane`` of series ``series``."""

    kind: MeasureKind
    series: str  # :func:`series_key` of the volume it was drawn on
    plane: Plane
    slice_index: int
    points: tuple[Point, ...]
    mid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])  # stable across sessions

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", MeasureKind(self.kind))
        object.__setattr__(self, "plane", Plane(self.plane))
        pts = tuple((float(c), float(r)) for c, r in self.points)
        if len(pts) != self.kind.points_needed:
            raise ValueError(f"a {self.kind.value} needs {self.kind.points_needed} points, got {len(pts)}")
        object.__setattr__(self, "points", pts)

    def moved(self, points: tuple[Point, ...]) -> "Measurement":
        """The same measurement (same id) with new points (an edit)."""
        return Measurement(self.kind, self.series, self.plane, self.slice_index, points, self.mid)

    def where(self) -> str:
        return f"{self.plane.value} slice {self.slice_index + 1}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.mid, "kind": self.kind.value, "series": self.series, "plane": self.plane.value,
                "slice": self.slice_index, "points": [[c, r] for c, r in self.points]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Measurement":
        return cls(MeasureKind(d["kind"]), str(d["series"]), Plane(d["plane"]), int(d["slice"]),
                   tuple((float(p[0]), float(p[1])) for p in d["points"]), str(d["id"]))


@dataclass(frozen=True)
class Calibration:
    """Physical size of one screen pixel of a view, and what the numbers are in."""

    sx: float  # screen x (column) spacing; 1.0 when uncalibrated
    sy: float  # screen y (row) spacing
    unit: LengthUnit
    value_unit: str  # "HU" for CT, "luma" for RGB, "" for other modality units

    @classmethod
    def of(cls, volume: Volume, geom: SliceGeometry) -> "Calibration":
        value_unit = "luma" if volume.is_rgb else ("HU" if volume.modality.upper() == "CT" else "")
        if volume.spacing_source == "none":
            return cls(1.0, 1.0, LengthUnit.PX, value_unit)
        sx, sy = geom.pixel_spacing
        unit = LengthUnit.MM_AT_DETECTOR if volume.spacing_source == "ImagerPixelSpacing" else LengthUnit.MM
        return cls(float(sx), float(sy), unit, value_unit)

    @property
    def area_unit(self) -> str:
        return "px\u00b2" if self.unit is LengthUnit.PX else (
            "mm\u00b2 at detector" if self.unit is LengthUnit.MM_AT_DETECTOR else "mm\u00b2")


@dataclass(frozen=True)
class MeasureResult:
    """The numbers of one measurement; ``text`` is what the panel, overlay and PDF show."""

    kind: MeasureKind
    unit: LengthUnit
    value_unit: str = ""
    length: float | None = None  # in ``unit``
    angle_deg: float | None = None
    n_pixels: int | None = None
    mean: float | None = None
    sd: float | None = None
    min: float | None = None
    max: float | None = None
    area: float | None = None  # n_pixels x pixel area, in ``unit`` squared

    @property
    def text(self) -> str:
        """One line: "12.34 mm", "37.5°", "mean 40.2 HU, SD 3.1, min 31, max 52; area 98.1 mm² (302 px)"."""
        if not self.kind.is_roi or not self.n_pixels:
            return self.lines[0]
        stats, min_max, area = self.lines
        return f"{stats.replace('  SD', ', SD')}, {min_max.replace('  max', ', max')}; {area}"

    @property
    def lines(self) -> tuple[str, ...]:
        """The value as drawn on the image (an ROI's statistics over three lines)."""
        if self.kind is MeasureKind.LENGTH:
            return (f"{self.length:.2f} {self.unit.value}",)
        if self.kind is MeasureKind.ANGLE:
            return (f"{self.angle_deg:.1f}\u00b0",)
        area_unit = Calibration(1, 1, self.unit, "").area_unit
        if not self.n_pixels:
            return (f"no pixel centre inside; area 0 {area_unit}",)
        u = f" {self.value_unit}" if self.value_unit else ""
        return (f"mean {_num(self.mean)}{u}  SD {_num(self.sd)}", f"min {_num(self.min)}  max {_num(self.max)}",
                f"area {_num(self.area)} {area_unit} ({self.n_pixels} px)")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind.value, "unit": self.unit.value, "value_unit": self.value_unit,
                             "text": self.text}
        for k in ("length", "angle_deg", "n_pixels", "mean", "sd", "min", "max", "area"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if float(v).is_integer() else (f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}")


# ----- computations ---------------------------------------------------------------------
def length_of(a: Point, b: Point, cal: Calibration) -> float:
    return math.hypot((b[0] - a[0]) * cal.sx, (b[1] - a[1]) * cal.sy)


def angle_at(a: Point, vertex: Point, c: Point, cal: Calibration) -> float:
    """Angle a-vertex-c in degrees, in physical space (0..180); 0 for a zero-length arm."""
    u = np.array([(a[0] - vertex[0]) * cal.sx, (a[1] - vertex[1]) * cal.sy])
    v = np.array([(c[0] - vertex[0]) * cal.sx, (c[1] - vertex[1]) * cal.sy])
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu == 0 or nv == 0:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v) / (nu * nv)))))


def roi_mask(kind: MeasureKind, a: Point, b: Point, shape: tuple[int, int]) -> np.ndarray:
    """(rows, cols) bool: the pixels whose centres lie inside the rectangle/ellipse spanned by
    corners ``a`` and ``b`` (edges included)."""
    h, w = shape
    c0, c1 = sorted((a[0], b[0]))
    r0, r1 = sorted((a[1], b[1]))
    cols = np.arange(w) + 0.5
    rows = np.arange(h) + 0.5
    if kind is MeasureKind.RECTANGLE:
        return ((rows >= r0) & (rows <= r1))[:, None] & ((cols >= c0) & (cols <= c1))[None, :]
    if kind is not MeasureKind.ELLIPSE:
        raise ValueError(f"{kind.value} is not an ROI")
    ra, rb = (c1 - c0) / 2, (r1 - r0) / 2
    if ra <= 0 or rb <= 0:
        return np.zeros(shape, dtype=bool)
    cx, cy = (c0 + c1) / 2, (r0 + r1) / 2
    return ((cols[None, :] - cx) / ra) ** 2 + ((rows[:, None] - cy) / rb) ** 2 <= 1.0


def slice_values(volume: Volume, geom: SliceGeometry, k: int) -> np.ndarray:
    """The view's slice ``k`` as float64 values in screen layout (luma for RGB)."""
    img = geom.extract(volume.array, k)
    if volume.is_rgb:
        return img[..., :3].astype(np.float64) @ np.array(LUMA_BT601)
    return img.astype(np.float64)


def measure(m: Measurement, volume: Volume, geom: SliceGeometry) -> MeasureResult:
    """The numbers of ``m`` on ``volume`` shown through ``geom`` (the view's plane)."""
    if geom.plane != m.plane:
        raise ValueError(f"a measurement on the {m.plane.value} plane measured through the {geom.plane.value} one")
    if volume.provisional:
        raise ValueError("a provisional image (one file, the series not yet sorted) cannot be measured")
    cal = Calibration.of(volume, geom)
    p = m.points
    if m.kind is MeasureKind.LENGTH:
        return MeasureResult(m.kind, cal.unit, cal.value_unit, length=length_of(p[0], p[1], cal))
    if m.kind is MeasureKind.ANGLE:
        return MeasureResult(m.kind, cal.unit, cal.value_unit, angle_deg=angle_at(p[0], p[1], p[2], cal))
    values = slice_values(volume, geom, m.slice_index)
    inside = values[roi_mask(m.kind, p[0], p[1], values.shape[:2])]
    n = int(inside.size)
    if n == 0:
        return MeasureResult(m.kind, cal.unit, cal.value_unit, n_pixels=0, area=0.0)
    return MeasureResult(m.kind, cal.unit, cal.value_unit, n_pixels=n, mean=float(inside.mean()),
                         sd=float(inside.std()), min=float(inside.min()), max=float(inside.max()),
                         area=n * cal.sx * cal.sy)


# ----- the session's store --------------------------------------------------------------
def series_key(volume: Volume) -> str:
    """Which series a measurement belongs to: the SeriesInstanceUID, else the first file."""
    return volume.series_uid or (volume.source_files[0] if volume.source_files else f"volume-{id(volume)}")


def study_key(volume: Volume) -> str:
    """Which study: the StudyInstanceUID, else the folder of the first file."""
    if volume.study_uid:
        return volume.study_uid
    return str(Path(volume.source_files[0]).parent) if volume.source_files else series_key(volume)


class MeasurementSession:
    """Measurements of every study shown in this window session, in drawing order per study:
    kept across slices and series of a study, and restored when the study is shown again."""

    def __init__(self) -> None:
        self._by_study: dict[str, list[Measurement]] = {}

    def for_study(self, study: str) -> list[Measurement]:
        return list(self._by_study.get(study, []))

    def add(self, study: str, m: Measurement) -> Measurement:
        self._by_study.setdefault(study, []).append(m)
        return m

    def get(self, study: str, mid: str) -> Measurement | None:
        return next((m for m in self._by_study.get(study, []) if m.mid == mid), None)

    def replace(self, study: str, m: Measurement) -> None:
        items = self._by_study.get(study, [])
        for i, old in enumerate(items):
            if old.mid == m.mid:
                items[i] = m
                return
        raise KeyError(m.mid)

    def remove(self, study: str, mid: str) -> Measurement | None:
        items = self._by_study.get(study, [])
        for i, m in enumerate(items):
            if m.mid == mid:
                return items.pop(i)
        return None

    def on_slice(self, study: str, series: str, plane: Plane, k: int) -> list[Measurement]:
        return [m for m in self._by_study.get(study, [])
                if m.series == series and m.plane == plane and m.slice_index == k]
