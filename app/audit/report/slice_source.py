"""Where the report's slice image and patient header come from when the run carries none.

Runs from the audit store always carry the windowed slice (``slice`` artifact). A run
folder from ``ask --out`` also has ``slice.png``. Only an incomplete folder falls back to
re-reading the original file named in ``record.input.source_path``; the re-read pixels are
accepted only when their sha256 equals the one recorded at run time, so a report can never
show a different image than the models saw.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.pipeline.record import RunRecord
from app.study.display_frame import display_frame
from app.study.volume import PatientInfo, Volume, Window


@dataclass
class SourceSlice:
    rgb: np.ndarray | None
    patient: PatientInfo | None
    note: str = ""  # why the image is missing, for the report


def _find_slice(volumes: list[Volume], record: RunRecord) -> tuple[Volume, int] | None:
    inp = record.input
    candidates = [v for v in volumes if not inp.series_uid or v.series_uid == inp.series_uid] or volumes
    for v in candidates:
        # The source is either the whole series/volume or the one DICOM file of the slice.
        for k in {inp.slice_index if v.num_slices == inp.num_slices else -1, 0 if v.num_slices == 1 else -1}:
            if 0 <= k < v.num_slices:
                # The recorded sha256 is of the display-frame pixels the models saw.
                pixels = np.ascontiguousarray(display_frame(v).image(k))
                if not inp.pixel_sha256 or hashlib.sha256(pixels.tobytes()).hexdigest() == inp.pixel_sha256:
                    return v, k
    return None


def reload_source(record: RunRecord) -> SourceSlice:
    """Re-read the original study for the slice (windowed as recorded) and the patient header."""
    from app.study.display import slice_rgb
    from app.study.loader import load

    src = record.input.source_path
    if not src:
        return SourceSlice(None, None, "the run records no source file")
    if not Path(src).exists():
        return SourceSlice(None, None, f"the source {src} is no longer available")
    result = load([src])
    if not result.volumes:
        reason = "; ".join(str(e) for e in result.errors) or "unreadable"
        return SourceSlice(None, None, f"the source could not be re-read ({reason})")
    found = _find_slice(result.volumes, record)
    if found is None:
        return SourceSlice(None, result.volumes[0].patient,
                           f"the pixels in {src} no longer match the recorded sha256; not shown")
    volume, k = found
    w = record.input.window or {}
    window = Window(float(w["center"]), float(w["width"]), str(w.get("name", ""))) if "center" in w else None
    return SourceSlice(slice_rgb(volume, k, window), volume.patient)
