"""The decoded-size cap: no image or volume is allocated beyond it.

Why: a few hundred kB of PNG, or a small DICOM declaring millions of frames, can decode to
gigabytes and take the machine down. Declared sizes are checked against this cap (and
against the file's real content, where the format allows) before any pixel buffer exists.
The cap is in pixels (voxels), per image or volume; ``CARE_MAX_PIXELS`` overrides it
(a plain integer, or with a K/M/G suffix, e.g. ``500M``).
"""
from __future__ import annotations

import os

DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = "CARE_MAX_PIXELS"
_SUFFIX = {"k": 10**3, "m": 10**6, "g": 10**9}


def max_pixels() -> int:
    """The cap in force (an unparseable or non-positive CARE_MAX_PIXELS keeps the default)."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().lower()
    if not text:
        return DEFAULT_MAX_PIXELS
    scale = _SUFFIX.get(text[-1], 1)
    try:
        value = int(float(text[:-1] if scale != 1 else text) * scale)
    except ValueError:
        return DEFAULT_MAX_PIXELS
    return value if value > 0 else DEFAULT_MAX_PIXELS


def _mp(n: int) -> str:
    return f"{n / 1e6:.4g} megapixels"


def over_cap(dims: tuple[int, ...], what: str = "declares") -> str | None:
    """None when ``dims`` (e.g. columns, rows, frames) fit the cap, else the one-line reason."""
    count = 1
    for d in dims:
        count *= max(int(d), 0)
    cap = max_pixels()
    if count <= cap:
        return None
    size = " x ".join(str(int(d)) for d in dims)
    return f"{what} {size} = {_mp(count)}, over the {_mp(cap)} limit ({MAX_PIXELS_ENV} raises it)"


__all__ = ["DEFAULT_MAX_PIXELS", "MAX_PIXELS_ENV", "max_pixels", "over_cap"]
