"""Pixel decoding: stored values of one frame, and colour images as RGB uint8.

Uncompressed little-endian greyscale frames are read straight from the file offset the
header scan found (no pydicom parse, one small per-frame buffer). Everything else goes
through pydicom 3's pixel-data plugins (pylibjpeg/libjpeg/openjpeg/rle), frame by frame.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pydicom
import pydicom.pixels
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut

from .errors import ReadFailure, one_line
from .frame_ref import FrameRef

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32}
_INT = {8: np.int8, 16: np.int16, 32: np.int32}


def is_color(ref: FrameRef) -> bool:
    return ref.samples > 1 or ref.photometric == "PALETTE COLOR"


def can_read_native(ref: FrameRef) -> bool:
    return (
        ref.pixel_offset is not None
        and ref.samples == 1
        and not ref.float_pixels
        and ref.bits_allocated in _UINT
        and ref.photometric.startswith("MONOCHROME")
    )


def read_native(ref: FrameRef) -> np.ndarray:
    """Stored values of one greyscale frame, read directly from the file."""
    dtype = (_INT if ref.pixel_rep else _UINT)[ref.bits_allocated]
    out = np.empty((ref.rows, ref.cols), dtype=np.dtype(dtype).newbyteorder("<"))
    nbytes = out.nbytes
    with open(ref.path, "rb") as fp:
        fp.seek(ref.pixel_offset + ref.frame * nbytes)  # type: ignore[operator]
        got = fp.readinto(memoryview(out).cast("B"))
    if got != nbytes:
        raise ReadFailure(f"truncated pixel data (frame {ref.frame}: {got} of {nbytes} bytes)")
    return _fix_unused_bits(out, ref)


def _fix_unused_bits(a: np.ndarray, ref: FrameRef) -> np.ndarray:
    """Clear bits above BitsStored (old overlays live there) and sign-extend."""
    bits, stored = ref.bits_allocated, ref.bits_stored
    if not 0 < stored < bits:
        return a
    if ref.pixel_rep:
        shift = bits - stored
        np.left_shift(a, shift, out=a)
        np.right_shift(a, shift, out=a)  # arithmetic shift on signed ints
    else:
        np.bitwise_and(a, a.dtype.type((1 << stored) - 1), out=a)
    return a


def _decode_error(ref: FrameRef, exc: Exception) -> ReadFailure:
    msg = one_line(exc, 160)
    low = msg.lower()
    if "truncat" in low or "insufficient" in low or "expected length" in low or "shorter" in low:
        return ReadFailure(f"truncated pixel data ({ref.transfer_syntax.name}): {msg}")
    return ReadFailure(f"cannot decode pixel data ({ref.transfer_syntax.name}): {msg}")


def decode_frame(ref: FrameRef) -> np.ndarray:
    """One frame via pydicom's plugins (YBR is converted to RGB)."""
    index = ref.frame if ref.n_frames > 1 else None
    try:
        if ref.transfer_syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
            # Deflate compresses the whole dataset, so it cannot be read from an offset.
            return pydicom.pixels.pixel_array(pydicom.dcmread(ref.path, force=True), index=index)
        return pydicom.pixels.pixel_array(ref.path, index=index, transfer_syntax_uid=ref.transfer_syntax)
    except ReadFailure:
        raise
    except Exception as exc:
        raise _decode_error(ref, exc) from None


def iter_file_frames(path: str, refs: list[FrameRef]) -> Iterator[tuple[FrameRef, np.ndarray]]:
    """Frames of one multi-frame file in file order, decoded once each."""
    wanted = sorted(refs, key=lambda r: r.frame)
    if all(can_read_native(r) for r in wanted):
        for r in wanted:
            yield r, read_native(r)
        return
    if wanted[0].transfer_syntax == pydicom.uid.DeflatedExplicitVRLittleEndian:
        for r in wanted:
            yield r, decode_frame(r)
        return
    try:
        frames = pydicom.pixels.iter_pixels(
            path, indices=[r.frame for r in wanted], transfer_syntax_uid=wanted[0].transfer_syntax
        )
        for r, arr in zip(wanted, frames):
            yield r, arr
    except ReadFailure:
        raise
    except Exception as exc:
        raise _decode_error(wanted[0], exc) from None


def read_frame(ref: FrameRef) -> np.ndarray:
    return read_native(ref) if can_read_native(ref) else decode_frame(ref)


def modality_values(raw: np.ndarray, ref: FrameRef) -> tuple[np.ndarray, float, float]:
    """Stored values -> (values, slope, intercept) still to apply.

    A Modality LUT replaces the linear rescale (PS3.3 C.11.1); pydicom applies it.
    """
    if ref.has_modality_lut:
        try:
            return apply_modality_lut(raw, ref.header), 1.0, 0.0
        except Exception as exc:
            raise ReadFailure(f"cannot apply Modality LUT: {one_line(exc, 120)}") from None
    return raw, ref.slope, ref.intercept


def stored_range(ref: FrameRef) -> tuple[float, float]:
    """Range of modality values the stored bits can express (for MONOCHROME1)."""
    if ref.has_modality_lut:
        try:
            item = ref.header.ModalityLUTSequence[0]
            bits = int(item.LUTDescriptor[2])
            return 0.0, float(2**bits - 1)
        except Exception:
            return 0.0, 65535.0
    bs = ref.bits_stored
    lo, hi = (-(2 ** (bs - 1)), 2 ** (bs - 1) - 1) if ref.pixel_rep else (0, 2**bs - 1)
    a, b = lo * ref.slope + ref.intercept, hi * ref.slope + ref.intercept
    return (min(a, b), max(a, b))


def to_rgb8(arr: np.ndarray, ref: FrameRef) -> np.ndarray:
    """A decoded colour frame as (rows, cols, 3) uint8 RGB."""
    if ref.photometric == "PALETTE COLOR":
        try:
            arr = apply_color_lut(arr, ref.header)
        except Exception as exc:
            raise ReadFailure(f"cannot apply palette colour LUT: {one_line(exc, 120)}") from None
    if arr.ndim == 2:  # greyscale frame inside a colour series: replicate
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if ref.photometric == "PALETTE COLOR":
            bits = 16 if arr.dtype.itemsize >= 2 else 8
        else:
            bits = max(ref.bits_stored, 8)
        arr = (arr >> max(bits - 8, 0)).astype(np.uint8) if arr.dtype.kind in "ui" else np.clip(arr, 0, 255).astype(np.uint8)
    return arr


__all__ = [
    "can_read_native",
    "decode_frame",
    "is_color",
    "iter_file_frames",
    "modality_values",
    "read_frame",
    "read_native",
    "stored_range",
    "to_rgb8",
]
