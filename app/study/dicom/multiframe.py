"""Per-frame geometry and value transforms: classic single-frame files, classic
multi-frame (RT Dose grid offsets, NM, cine) and Enhanced CT/MR/PET (functional groups).

Every frame becomes a :class:`FrameRef` with its own position/orientation/rescale, so
an Enhanced file and a classic series go through the same split/sort code.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from .attributes import _first, _floats, _num, _text
from .frame_ref import FrameRef
from .sanity import positive_or_none, value_notes

# Attributes that can tell apart frames stored at the same position (phases, repeats).
TEMPORAL_KEYS = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionNumber", "AcquisitionTime", "ContentTime")


def _window(ds: Dataset | None) -> tuple[float, float] | None:
    c, w = _num(ds, "WindowCenter"), _num(ds, "WindowWidth")
    if c is None or w is None or not (math.isfinite(c) and math.isfinite(w)) or w <= 0:
        return None
    return (c, w)


def _spacing(ds: Dataset | None) -> tuple[float, float] | None:
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        v = _floats(ds, kw, 2)
        if v and math.isfinite(v[0] + v[1]) and v[0] > 0 and v[1] > 0:
            return (v[0], v[1])
    return None


def _echo(ds: Dataset | None) -> str:
    if ds is None:
        return ""
    parts = [_text(ds, "EchoNumbers"), _text(ds, "EchoTime")]
    return "/".join(p for p in parts if p)


def _slope_intercept(ds: Dataset | None) -> tuple[float | None, float | None]:
    return _num(ds, "RescaleSlope"), _num(ds, "RescaleIntercept")


def frames_of(ds: Dataset, common: dict[str, Any]) -> list[FrameRef]:
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        return _enhanced_frames(ds, common)
    n = common["n_frames"]
    iop = _floats(ds, "ImageOrientationPatient", 6)
    ipp = _floats(ds, "ImagePositionPatient", 3)
    slope, intercept = _slope_intercept(ds)
    if _text(ds, "Modality").upper() == "RTDOSE" and _num(ds, "DoseGridScaling") is not None:
        slope = _num(ds, "DoseGridScaling")  # RT Dose: stored value x scaling = Gy
    base = dict(
        common,
        orientation=iop,
        pixel_spacing=_spacing(ds) or (1.0, 1.0),
        slice_thickness=positive_or_none(_num(ds, "SliceThickness")),
        spacing_between=positive_or_none(_num(ds, "SpacingBetweenSlices")),
        slope=1.0 if slope is None or slope == 0 else slope,
        intercept=0.0 if intercept is None else intercept,
        window=_window(ds),
        echo=_echo(ds),
        stack="",
        temporal={k: _text(ds, k) for k in TEMPORAL_KEYS},
        notes=value_notes(ds),
    )
    if n == 1:
        return [FrameRef(frame=0, position=ipp, **base)]
    positions: list[tuple[float, float, float] | None] = [None] * n
    offsets = ds.get("GridFrameOffsetVector")
    if ipp is not None and iop is not None:
        normal = np.cross(iop[:3], iop[3:])
        step = None
        if offsets is not None and len(offsets) == n:
            try:
                offs = [float(o) for o in offsets]
            except (TypeError, ValueError):
                offs = []
            if offs:
                # Offsets are relative to the first frame when the first is 0 (the usual case).
                rel = [o - offs[0] for o in offs] if offs[0] != 0 else offs
                positions = [tuple(np.asarray(ipp) + r * normal) for r in rel]  # type: ignore[misc]
        elif base["spacing_between"] and base["modality"] in ("NM", "PT"):
            step = float(base["spacing_between"])
            positions = [tuple(np.asarray(ipp) + k * step * normal) for k in range(n)]  # type: ignore[misc]
    return [FrameRef(frame=k, position=positions[k], **base) for k in range(n)]


def _group(item: Dataset | None, seq: str) -> Dataset | None:
    if item is None:
        return None
    s = item.get(seq)
    return s[0] if s else None


def _enhanced_frames(ds: Dataset, common: dict[str, Any]) -> list[FrameRef]:
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    n = common["n_frames"]
    top_iop = _floats(ds, "ImageOrientationPatient", 6)
    frames = []
    for k in range(n):
        pf = per_frame[k] if k < len(per_frame) else None

        def look(seq: str, pf: Dataset | None = pf) -> Dataset | None:
            # Per-frame values override shared ones (PS3.3 C.7.6.16).
            return _group(pf, seq) or _group(shared, seq)

        pos_item = look("PlanePositionSequence")
        ori_item = look("PlaneOrientationSequence")
        meas = look("PixelMeasuresSequence")
        pvt = look("PixelValueTransformationSequence")
        voi = look("FrameVOILUTSequence")
        content = _group(pf, "FrameContentSequence")
        echo_item = look("MREchoSequence")
        slope, intercept = _slope_intercept(pvt)
        if slope is None:
            slope, intercept = _slope_intercept(ds)
        stack_parts = []
        if content is not None:
            for kw in ("StackID", "TemporalPositionIndex"):
                v = _text(content, kw)
                if v:
                    stack_parts.append(f"{kw}={v}")
        frames.append(
            FrameRef(
                frame=k,
                orientation=_floats(ori_item, "ImageOrientationPatient", 6) or top_iop,
                position=_floats(pos_item, "ImagePositionPatient", 3),
                pixel_spacing=_spacing(meas) or _spacing(ds) or (1.0, 1.0),
                slice_thickness=positive_or_none(_num(meas, "SliceThickness")),
                spacing_between=positive_or_none(_num(meas, "SpacingBetweenSlices")),
                slope=1.0 if not slope else slope,
                intercept=intercept or 0.0,
                window=_window(voi) or _window(ds),
                echo=_text(echo_item, "EffectiveEchoTime") if echo_item is not None else _echo(ds),
                stack=";".join(stack_parts),
                temporal={k2: _text(content, k2) if content is not None else "" for k2 in ("FrameAcquisitionNumber",)},
                notes=value_notes(meas) + value_notes(voi) + (value_notes(ds) if k == 0 else ()),
                **common,
            )
        )
    return frames


__all__ = ["frames_of", "TEMPORAL_KEYS", "_first"]
