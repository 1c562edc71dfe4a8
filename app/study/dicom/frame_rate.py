"""The playback rate a multi-frame file states for its frames (PS3.3 C.7.6.5 Cine Module,
C.7.6.6 Multi-frame, C.8.x RecommendedDisplayFrameRate), read once from its header.

Order: FrameTime (the nominal time between frames, ms), FrameTimeVector (per-frame
increments; their mean), CineRate (frames/s), RecommendedDisplayFrameRate (frames/s).
A file stating none gets no rate: the viewer then plays at a default it says is its own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pydicom.dataset import Dataset

from .attributes import _num


@dataclass(frozen=True)
class FrameRate:
    fps: float
    source: str  # what the header said, e.g. "FrameTime 33.333 ms"


def _ok(v: float | None) -> bool:
    return v is not None and math.isfinite(v) and v > 0


def frame_rate(ds: Dataset | None) -> FrameRate | None:
    """The file's frame rate, or None when it states none usable."""
    if ds is None:
        return None
    ft = _num(ds, "FrameTime")
    if _ok(ft):
        return FrameRate(1000.0 / ft, f"FrameTime {ft:g} ms")  # type: ignore[operator]
    vector = _vector(ds)
    if vector:
        mean = sum(vector) / len(vector)
        return FrameRate(1000.0 / mean, f"FrameTimeVector (mean {mean:g} ms)")
    for kw in ("CineRate", "RecommendedDisplayFrameRate"):
        v = _num(ds, kw)
        if _ok(v):
            return FrameRate(float(v), f"{kw} {v:g} /s")  # type: ignore[arg-type]
    return None


def _vector(ds: Dataset) -> list[float]:
    """FrameTimeVector's increments after the first frame (whose entry is 0), if all valid."""
    raw = ds.get("FrameTimeVector")
    if raw is None:
        return []
    try:
        vals = [float(x) for x in (raw if not isinstance(raw, (str, bytes)) else [raw])]
    except (TypeError, ValueError):
        return []
    steps = vals[1:]
    return steps if steps and all(_ok(s) for s in steps) else []


__all__ = ["FrameRate", "frame_rate"]
