"""One SOP instance is one image: drop extra copies of an instance before stacking.

Archives and test sets often hold the same instances in several transfer syntaxes
(explicit little endian, big endian, JPEG 2000, RLE ...) side by side. Stacking them
would repeat every image (3 copies of a 10-frame instance became 30 slices), so copies
that share a SOPInstanceUID are collapsed to one file: the first uncompressed copy, or
the first copy when all are compressed (uncompressed is exact and cheapest to read).
"""
from __future__ import annotations

import os
from collections import defaultdict

from .frame_ref import FrameRef

# How many duplicate file names a warning spells out before "and N more".
_NAMED = 3


def drop_duplicate_instances(frames: list[FrameRef]) -> list[FrameRef]:
    """``frames`` without the frames of extra copies of an instance, order kept.

    Each kept frame of a series that lost copies gets a note (it becomes a volume warning
    through the stack's notes) naming the ignored files. Frames without a
    SOPInstanceUID are never merged (nothing says they are the same image).
    """
    paths_by_uid: dict[str, list[str]] = defaultdict(list)
    compressed: dict[str, bool] = {}
    for f in frames:
        if f.instance_uid and f.path not in compressed:
            paths_by_uid[f.instance_uid].append(f.path)
            compressed[f.path] = bool(getattr(f.transfer_syntax, "is_compressed", False))
    dropped: set[str] = set()
    for paths in paths_by_uid.values():
        if len(paths) < 2:
            continue
        keep = next((p for p in paths if not compressed[p]), paths[0])
        dropped.update(p for p in paths if p != keep)
    if not dropped:
        return frames
    ignored_by_series: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in frames:
        if f.path in dropped and f.frame == 0:
            ignored_by_series[(f.study_uid, f.series_uid)].append(f.path)
    kept = [f for f in frames if f.path not in dropped]
    for f in kept:
        ignored = ignored_by_series.get((f.study_uid, f.series_uid))
        if ignored:
            f.notes = f.notes + (_note(ignored),)
    return kept


def _note(ignored: list[str]) -> str:
    names = ", ".join(os.path.basename(p) for p in ignored[:_NAMED])
    more = f" and {len(ignored) - _NAMED} more" if len(ignored) > _NAMED else ""
    return (f"{len(ignored)} duplicate cop{'ies' if len(ignored) != 1 else 'y'} of SOP instances "
            f"(same SOPInstanceUID) skipped: {names}{more}")


__all__ = ["drop_duplicate_instances"]
