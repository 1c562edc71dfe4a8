"""What the header says about *showing* a series, applied to a freshly built volume:
projection geometry (PatientOrientation instead of an invented orientation), where the
in-plane spacing comes from, MONOCHROME1 (inverted on display only), every VOI window,
and overlay planes.

Why a separate pass: these attributes never change the stored values or the volume's
array, so they are read once from the first frame's header after the stack is built.
"""
from __future__ import annotations

import math

from pydicom.dataset import Dataset

from ..volume import Volume, Window
from .attributes import _floats, _num
from .frame_ref import FrameRef
from .overlay_planes import read_overlays

# Ultrasound region physical units (PS3.3 C.8.5.5.1.15): 3 = cm (the only physical unit we turn into mm).
_US_UNIT_CM = 3


def spacing_source(ds: Dataset) -> tuple[str, tuple[float, float] | None]:
    """(source, (row spacing, column spacing) in mm) by the order PS3.3 C.10.7.1.3 implies:
    PixelSpacing (patient plane), ImagerPixelSpacing (detector plane), an ultrasound
    region's PhysicalDeltaX/Y (cm), else ("none", None)."""
    for source in (ds, *_pixel_measures(ds)):
        for kw in ("PixelSpacing", "ImagerPixelSpacing"):
            v = _floats(source, kw, 2)
            if v and math.isfinite(v[0] + v[1]) and v[0] > 0 and v[1] > 0:
                return kw, (v[0], v[1])
    for region in ds.get("SequenceOfUltrasoundRegions", None) or []:
        dx, dy = _num(region, "PhysicalDeltaX"), _num(region, "PhysicalDeltaY")
        ux, uy = _num(region, "PhysicalUnitsXDirection"), _num(region, "PhysicalUnitsYDirection")
        if ux == uy == _US_UNIT_CM and dx and dy and math.isfinite(dx + dy) and dx > 0 and dy > 0:
            return "UltrasoundRegion", (abs(dy) * 10.0, abs(dx) * 10.0)
    return "none", None


def _pixel_measures(ds: Dataset) -> list[Dataset]:
    """Enhanced (multi-frame functional group) files keep PixelSpacing in PixelMeasuresSequence."""
    out = []
    for fg in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        try:
            item = ds.get(fg)[0] if ds.get(fg) else None
            if item is not None and item.get("PixelMeasuresSequence"):
                out.append(item.PixelMeasuresSequence[0])
        except Exception:  # odd functional groups must not stop the scan
            continue
    return out


def patient_orientation(ds: Dataset) -> tuple[str, str] | None:
    """PatientOrientation (row direction, column direction) as upper-case codes, or None."""
    v = ds.get("PatientOrientation")
    if v is None:
        return None
    vals = [str(x).strip().upper() for x in (v if not isinstance(v, str) else str(v).split("\\"))]
    if len(vals) != 2 or not all(vals):
        return None
    return (vals[0], vals[1])


def voi_windows(ds: Dataset) -> list[Window]:
    """All (WindowCenter, WindowWidth) pairs with their explanations, valid ones only."""
    def values(kw: str) -> list:
        v = ds.get(kw)
        if v is None or v == "":
            return []
        return list(v) if not isinstance(v, (str, bytes, int, float)) else [v]

    centers, widths, names = values("WindowCenter"), values("WindowWidth"), values("WindowCenterWidthExplanation")
    out: list[Window] = []
    for i, (c, w) in enumerate(zip(centers, widths)):
        try:
            c, w = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if math.isfinite(c) and math.isfinite(w) and w > 0:
            name = str(names[i]).strip() if i < len(names) and str(names[i]).strip() else f"file {i + 1}"
            out.append(Window(c, w, name))
    return out


def apply_presentation(volume: Volume, frames: list[FrameRef]) -> None:
    """Fill the volume's presentation fields from its frames' headers (in array z order)."""
    first = frames[0]
    ds = first.header
    source, rc = spacing_source(ds)
    volume.spacing_source = source
    if source == "UltrasoundRegion" and rc is not None:
        volume.spacing = (rc[1], rc[0], volume.spacing[2])
    elif source == "none":
        volume.spacing = (1.0, 1.0, volume.spacing[2])  # placeholder: the viewer shows pixels
    volume.projection = first.orientation is None
    volume.patient_orientation = patient_orientation(ds) if volume.projection else None
    volume.invert_display = not volume.is_rgb and first.photometric == "MONOCHROME1"
    if not volume.is_rgb:
        volume.voi_windows = voi_windows(ds)
    volume.dicom_overlays, notes = read_overlays([(f.header, f.frame) for f in frames])
    volume.warnings.extend(notes)
