"""Images to PNG data URLs for chat messages (stdlib zlib; lossless, so the server sees
exactly the pixels the local backend would)."""
from __future__ import annotations

import base64
import hashlib
import struct
import zlib

import numpy as np

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = 3) -> bytes:
    """Encode an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 array as an 8-bit PNG.

    PNG filter "Up" on every scanline with zlib level 3: on a 512x512 CT slice this is ~3x
    faster than filter None at level 6 and ~10% smaller (measured), which matters because
    encoding sits on the critical path of every remote request.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in _COLOR_TYPE or 0 in arr.shape[:2]:
        raise ValueError(f"image must be (H, W[, 1|3|4]) and non-empty, got shape {image.shape}")
    h, w, c = arr.shape
    flat = np.ascontiguousarray(arr).reshape(h, w * c)
    filtered = flat.copy()
    filtered[1:] -= flat[:-1]  # Up: difference to the row above, mod 256 (row 0 vs an all-zero row)
    rows = np.concatenate([np.full((h, 1), 2, np.uint8), filtered], axis=1)  # filter-type byte 2 = Up
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE[c], 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def png_data_url(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def describe_data_url(url: str) -> str:
    """Short stand-in for an image data URL in records: size and a digest, never the bytes."""
    if not url.startswith("data:"):
        return url  # a plain http(s) image URL is fine to record as is
    header, _, payload = url.partition(",")
    try:
        raw = base64.b64decode(payload, validate=False)
    except (ValueError, TypeError):
        raw = payload.encode()
    dims = ""
    if raw.startswith(_PNG_SIGNATURE) and len(raw) >= 24:
        w, h = struct.unpack(">II", raw[16:24])
        dims = f" {w}x{h}"
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return f"<{header.removeprefix('data:')}{dims}, {len(raw)} bytes, sha256 {digest}>"
