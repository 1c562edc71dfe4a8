"""Spacing, origin and direction from a file header made usable, saying what was assumed.

Why: NaN/inf/zero/negative spacing or a NaN origin would make every measurement, every
reformat and every physical coordinate meaningless. A value we cannot use is replaced by
a stated assumption (a volume warning shown by ``info`` and the viewer), never silently.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def checked_geometry(
    spacing: Sequence[float], origin: Sequence[float], direction: np.ndarray
) -> tuple[list[float], list[float], np.ndarray, list[str]]:
    """(spacing, origin, direction, notes); notes is empty when everything was usable."""
    notes: list[str] = []
    sp = [float(s) for s in spacing]
    if not all(math.isfinite(s) and s > 0 for s in sp):
        fixed = [abs(s) if math.isfinite(s) and s != 0 else 1.0 for s in sp]
        notes.append(f"invalid spacing {_fmt(sp)} in the file; assumed {_fmt(fixed)} mm")
        sp = fixed
    org = [float(o) for o in origin]
    if not all(math.isfinite(o) for o in org):
        fixed = [o if math.isfinite(o) else 0.0 for o in org]
        notes.append(f"non-finite origin {_fmt(org)} in the file; assumed {_fmt(fixed)} mm")
        org = fixed
    d = np.asarray(direction, float)
    if not np.isfinite(d).all() or abs(np.linalg.det(d)) < 1e-6:
        notes.append(f"invalid orientation {_fmt(d.ravel())} in the file; assumed the identity (axial)")
        d = np.eye(d.shape[0])
    return sp, org, d, notes


__all__ = ["checked_geometry"]
