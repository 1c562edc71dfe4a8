"""A run on disk: ``DIR/run.json`` (the record) with its images as PNGs beside it.

Files (names are carried by the record itself, so a reader needs no convention):
- ``slice.png``: the windowed slice the models saw (first image of every evidence pass);
- ``mask_NN.png``: each mask, 0/255 grey, image-sized (accepted or not);
- ``evidence_<type>.png``: the second image of a crop/mask evidence pass.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .record import RunRecord

RUN_JSON = "run.json"
SLICE_PNG = "slice.png"


def _write_png(path: Path, image: np.ndarray) -> None:
    img = np.asarray(image)
    if img.dtype == bool:
        img = np.where(img, np.uint8(255), np.uint8(0))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"cannot write {path}")


def _read_png(path: Path, color: bool) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if color else img


def write_run(record: RunRecord, out_dir: str | Path) -> Path:
    """Write the record and its images into ``out_dir`` (created); returns the run.json path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if record.slice_rgb is not None:
        _write_png(out / SLICE_PNG, record.slice_rgb)
    for m in record.masks:
        if m.mask is not None and m.png:
            _write_png(out / m.png, m.mask)
    for item in record.evidence:
        # images[0] is the slice itself (slice.png); the rest are the evidence images.
        for name, img in zip(item.image_files, item.images):
            if name != SLICE_PNG:
                _write_png(out / name, img)
    path = out / RUN_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record.to_dict(), indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a record
    return path


def read_run(path: str | Path, load_images: bool = True) -> RunRecord:
    """Read ``DIR`` or ``DIR/run.json`` back; images are re-attached when ``load_images``."""
    p = Path(path)
    if p.is_dir():
        p = p / RUN_JSON
    record = RunRecord.from_dict(json.loads(p.read_text(encoding="utf-8")))
    if not load_images:
        return record
    folder = p.parent
    if (folder / SLICE_PNG).is_file():
        record.slice_rgb = _read_png(folder / SLICE_PNG, color=True)
    for m in record.masks:
        if m.png and (folder / m.png).is_file():
            m.mask = _read_png(folder / m.png, color=False) > 127
    for item in record.evidence:
        item.images = [
            record.slice_rgb if name == SLICE_PNG and record.slice_rgb is not None
            else _read_png(folder / name, color=True)
            for name in item.image_files
            if (folder / name).is_file()
        ]
    return record
