"""Is an unlabelled volume a CT in Hounsfield units? (NIfTI/NRRD/MHA carry no modality.)

The answer decides the window a NIfTI/NRRD CT gets: with it, the same study shows (and is
sent to the model) with the same CT window whether it was opened as DICOM or as a file
without a modality. The test is deliberately strict, because a wrong "CT" is worse than the
percentile window: every rule below must hold, else the volume keeps the automatic window.

- finite values that are all integers (scanners store HU as integers; a resampled or
  normalised float volume is not trusted);
- values below -1024 HU (impossible in tissue) are only a padding value outside the
  reconstruction circle (one value holding >= 90 % of them, e.g. -2048, -3024) or noise
  (<= 2 % of the voxels); a spread of large negatives (an MR phase map) is refused;
- of the rest, >= 98 % lie in the CT range [-1024, 3071] HU;
- there is air or lung (>= 0.5 % of voxels in [-1024, -500] HU) AND soft tissue or fluid
  (>= 1 % in [-100, 300] HU): a CT stored without its rescale applied (air ~ 0, water ~ 1024),
  an MR, a PET or a label map has no such negative peak.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HU_MIN, HU_MAX = -1024.0, 3071.0
_SAMPLE = 1_000_000


@dataclass(frozen=True)
class HUCheck:
    is_hu: bool
    reason: str  # why (not): one line, for tests and logs


def _sample(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values).reshape(-1)
    if v.size > 2 * _SAMPLE:  # shares of a strided sample are indistinguishable
        v = v[:: v.size // _SAMPLE]
    return v


def check_hu(values: np.ndarray) -> HUCheck:
    """Whether ``values`` look like CT Hounsfield units (see the module docstring)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        return HUCheck(False, f"{arr.dtype} values")
    v = _sample(arr)
    if v.dtype.kind == "f":
        if not np.isfinite(v).all():
            return HUCheck(False, "non-finite values")
        if not np.array_equal(v, np.round(v)):
            return HUCheck(False, "non-integer values")
    v = v.astype(np.float64, copy=False)
    below = v[v < HU_MIN]
    if below.size:
        _, counts = np.unique(below, return_counts=True)
        padding = counts.max() >= 0.9 * below.size
        if not padding and below.size > 0.02 * v.size:
            return HUCheck(False, f"{below.size / v.size:.0%} of values below {HU_MIN:g} and not one padding value")
    rest = v[v >= HU_MIN]
    if rest.size == 0:
        return HUCheck(False, "no values in the CT range")
    in_range = float(np.mean(rest <= HU_MAX))
    if in_range < 0.98:
        return HUCheck(False, f"only {in_range:.0%} of values in [{HU_MIN:g}, {HU_MAX:g}]")
    air = float(np.mean(rest <= -500.0))
    soft = float(np.mean((rest >= -100.0) & (rest <= 300.0)))
    if air < 0.005:
        return HUCheck(False, f"no air or lung (values <= -500: {air:.1%})")
    if soft < 0.01:
        return HUCheck(False, f"no soft tissue (values in [-100, 300]: {soft:.1%})")
    return HUCheck(True, f"integer values, {air:.0%} air/lung, {soft:.0%} soft tissue, {in_range:.0%} in CT range")
