"""Images of a run as lossless PNG bytes, and back onto a record's transient fields.

The names are the ones the record carries (``slice.png``, ``MaskRecord.png``,
``EvidenceItem.image_files``), the same files :mod:`app.pipeline.run_io` writes, so a run
folder and an audit-store run hold identical images.
"""
from __future__ import annotations

import hashlib
from typing import Mapping

import cv2
import numpy as np

from app.pipeline.record import RunRecord

SLICE_NAME = "slice.png"


def encode_png(image: np.ndarray | bytes) -> bytes:
    """PNG bytes of an RGB (H, W, 3) uint8 or a (H, W) bool/uint8 mask; bytes pass through."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("artifact bytes are not a PNG")
        return data
    img = np.asarray(image)
    if img.dtype == bool:
        img = np.where(img, np.uint8(255), np.uint8(0))
    if img.dtype != np.uint8:
        raise ValueError(f"artifact arrays must be uint8 or bool, not {img.dtype}")
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes, color: bool) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError("not a readable PNG")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if color else img


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mask_names(record: RunRecord) -> set[str]:
    return {m.png for m in record.masks if m.png}


def kind_of(record: RunRecord, name: str) -> str:
    if name == SLICE_NAME:
        return "slice"
    if name in mask_names(record):
        return "mask"
    if any(name in item.image_files for item in record.evidence):
        return "evidence"
    return "other"


def collect(record: RunRecord) -> dict[str, np.ndarray]:
    """The record's in-memory images under their file names (what run_io would write)."""
    out: dict[str, np.ndarray] = {}
    if record.slice_rgb is not None:
        out[SLICE_NAME] = record.slice_rgb
    for m in record.masks:
        if m.mask is not None and m.png:
            out[m.png] = m.mask
    for item in record.evidence:
        for name, img in zip(item.image_files, item.images):
            if name != SLICE_NAME and img is not None:
                out.setdefault(name, img)
    if record.study is not None:  # the other evidence slices' images
        for name, img in record.study.images().items():
            out.setdefault(name, img)
    return out


def attach(record: RunRecord, blobs: Mapping[str, bytes]) -> RunRecord:
    """Restore the transient arrays of ``record`` from PNG blobs (mirrors run_io.read_run)."""
    if SLICE_NAME in blobs:
        record.slice_rgb = decode_png(blobs[SLICE_NAME], color=True)
    for m in record.masks:
        if m.png in blobs:
            m.mask = decode_png(blobs[m.png], color=False) > 127
    for item in record.evidence:
        item.images = [
            record.slice_rgb if name == SLICE_NAME and record.slice_rgb is not None
            else decode_png(blobs[name], color=True)
            for name in item.image_files
            if name in blobs
        ]
    if record.study is not None:
        record.study.attach(lambda name: decode_png(blobs[name], color=True) if name in blobs else None,
                            record.slice_rgb)
    return record
