"""A large DICOM series made from a real one, for loading benchmarks and tests.

Slice ``i`` of ``n`` carries the pixels of source slice ``i * m // n`` (the source stretched
along z), a position on a uniform grid spanning the source's extent, its own InstanceNumber
and SOP Instance UID, and one new Series Instance UID. Names are ``IM00001.dcm`` ... unless
``shuffle_names``: then each file is named by a hash of its index, so name order says nothing
about slice order.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

_DONE = ".complete"


def _sorted_sources(src_dir: Path) -> list[pydicom.Dataset]:
    sources = [pydicom.dcmread(p) for p in sorted(src_dir.iterdir()) if p.suffix.lower() == ".dcm"]
    if not sources:
        raise FileNotFoundError(f"no .dcm files in {src_dir}")
    return sorted(sources, key=lambda ds: float(ds.ImagePositionPatient[2]))


def write_large_series(src_dir: str | os.PathLike, out_dir: str | os.PathLike, n_slices: int,
                       *, shuffle_names: bool = False) -> Path:
    """Write (once: a finished folder is reused) an ``n_slices`` series into ``out_dir``."""
    out = Path(out_dir)
    if (out / _DONE).is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    sources = _sorted_sources(Path(src_dir))
    m = len(sources)
    z0 = float(sources[0].ImagePositionPatient[2])
    extent = float(sources[-1].ImagePositionPatient[2]) - z0 if m > 1 else float(n_slices)
    # Rounded once, so every gap is the same in the files' decimal strings (uniform sampling).
    step = round(extent / max(n_slices - 1, 1), 4)
    series_uid = generate_uid(entropy_srcs=[str(sources[0].SeriesInstanceUID), str(n_slices)])
    for i in range(n_slices):
        ds = sources[i * m // n_slices]
        pos = list(ds.ImagePositionPatient)
        ds.ImagePositionPatient = [pos[0], pos[1], round(z0 + i * step, 4)]
        ds.SliceThickness = round(step, 4)
        ds.InstanceNumber = i + 1
        ds.SeriesInstanceUID = series_uid
        uid = generate_uid(entropy_srcs=[series_uid, str(i)])
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        name = hashlib.sha1(f"{n_slices}-{i}".encode()).hexdigest()[:12] if shuffle_names else f"IM{i + 1:05d}"
        ds.save_as(out / f"{name}.dcm", enforce_file_format=True)
    (out / _DONE).write_text(f"{n_slices}\n")
    return out


__all__ = ["write_large_series"]
