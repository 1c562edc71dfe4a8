"""The decoded-size cap: no image or volume is allocated beyond it.

Why: a few hundred kB of PNG, or a small DICOM declaring millions of frames, can decode to
gigabytes and take the machine down. Declared sizes are checked against this cap (and
against the file's real content, where the format allows) before any pixel buffer exists.

The cap is in pixels (voxels), per image or volume. By default it follows the machine: a
quarter of its physical memory at 4 bytes per voxel (``RAM / 16`` voxels), or of a container's
memory limit where that is lower (cgroup v2 / v1), never below 200 megapixels. The loader peaks at ~1.05x the volume; a quarter leaves the rest of RAM to
what the app holds beside it (models, display images, masks) and to the rest of the machine;
4 bytes covers a float32 volume (int16 CT takes half). So a 24 GiB
workstation opens up to ~1,610 megapixels (a 2,000-slice 512x512 CT is 524), while a tiny
file declaring billions of voxels is still refused. ``CARE_MAX_PIXELS`` overrides it (a plain
integer, or with a K/M/G suffix, e.g. ``500M``).
"""
from __future__ import annotations

import os

MIN_MAX_PIXELS = 200_000_000  # the floor (and the cap wherever RAM cannot be read)
RAM_FRACTION = 0.25
BYTES_PER_VOXEL = 4
MAX_PIXELS_ENV = "CARE_MAX_PIXELS"
_SUFFIX = {"k": 10**3, "m": 10**6, "g": 10**9}


def physical_memory() -> int | None:
    """Total physical memory in bytes, or None when neither sysconf nor psutil can tell."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if total > 0:
            return int(total)
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().total) or None
    except Exception:  # psutil missing or unable to read: fall back to the floor
        return None


# A container's memory limit (cgroup v2, then v1): the kernel kills the app there, whatever the
# machine's RAM. v1 says "no limit" with a huge number, v2 with "max".
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def cgroup_memory_limit() -> int | None:
    """This process's container memory limit in bytes, or None when there is none (or unreadable)."""
    for name in CGROUP_LIMIT_FILES:
        try:
            with open(name, encoding="ascii") as fh:
                text = fh.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit() and 0 < int(text) < 2**60:
            return int(text)
        return None  # "max", or v1's "unlimited" page-rounded 2**63
    return None


def memory_budget() -> tuple[int, str] | None:
    """(bytes, what they are) the cap is a fraction of: the machine's RAM, or a container's lower
    memory limit; None when neither can be read."""
    ram, limit = physical_memory(), cgroup_memory_limit()
    if limit is not None and (ram is None or limit < ram):
        return limit, f"this container's {_gib(limit)} memory limit"
    return (ram, f"this machine's {_gib(ram)} RAM") if ram else None


def default_max_pixels() -> int:
    """RAM_FRACTION of the memory budget at BYTES_PER_VOXEL, never below MIN_MAX_PIXELS."""
    budget = memory_budget()
    if budget is None:
        return MIN_MAX_PIXELS
    return max(MIN_MAX_PIXELS, int(budget[0] * RAM_FRACTION) // BYTES_PER_VOXEL)


def _from_env() -> int | None:
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().lower()
    if not text:
        return None
    scale = _SUFFIX.get(text[-1], 1)
    try:
        value = int(float(text[:-1] if scale != 1 else text) * scale)
    except (ValueError, OverflowError):
        return None
    return value if value > 0 else None


def max_pixels() -> int:
    """The cap in force: CARE_MAX_PIXELS, else the RAM-based default (an unparseable or
    non-positive CARE_MAX_PIXELS keeps the default)."""
    value = _from_env()
    return default_max_pixels() if value is None else value


def megapixels(n: int) -> str:
    value = n / 1e6
    return f"{value:.4g} megapixels" if value < 1000 else f"{value:,.0f} megapixels"


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def over_cap(dims: tuple[int, ...], what: str = "declares") -> str | None:
    """None when ``dims`` (e.g. columns, rows, frames) fit the cap, else the one-line reason
    (callers put the file's path in front of it)."""
    count = 1
    for d in dims:
        count *= max(int(d), 0)
    cap = max_pixels()
    if count <= cap:
        return None
    size = " x ".join(str(int(d)) for d in dims)
    head = f"{what} {size} = {megapixels(count)}, over the {megapixels(cap)} limit"
    if _from_env() is not None:
        return f"{head} set by {MAX_PIXELS_ENV} (a larger value raises it)"
    budget = memory_budget()
    source = (f"a quarter of {budget[1]} at {BYTES_PER_VOXEL} bytes per voxel"
              if budget and cap > MIN_MAX_PIXELS else "the minimum default")
    return f"{head} ({source}; {MAX_PIXELS_ENV}=<n>M raises it)"


__all__ = ["BYTES_PER_VOXEL", "MAX_PIXELS_ENV", "MIN_MAX_PIXELS", "RAM_FRACTION", "cgroup_memory_limit",
           "default_max_pixels", "max_pixels", "megapixels", "memory_budget", "over_cap", "physical_memory"]
