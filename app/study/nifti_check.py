"""Is a NIfTI file as long as its header says? (SimpleITK may zero-fill a cut file.)

Why: a NIfTI cut in half (an interrupted copy or download) would otherwise load with its
missing half silently black. The header declares where the voxels start and how many there
are; the file (for .nii.gz: the decompressed stream) must hold at least that many bytes.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib


def _declared_end(head: bytes) -> int | None:
    """vox_offset + voxel bytes from a NIfTI-1 or NIfTI-2 header, None when unrecognised."""
    for end in ("<", ">"):
        if len(head) >= 348 and struct.unpack(end + "i", head[:4])[0] == 348:
            dims = struct.unpack(end + "8h", head[40:56])
            bitpix = struct.unpack(end + "h", head[72:74])[0]
            offset = int(struct.unpack(end + "f", head[108:112])[0])
            break
        if len(head) >= 540 and struct.unpack(end + "i", head[:4])[0] == 540:
            bitpix = struct.unpack(end + "h", head[14:16])[0]
            dims = struct.unpack(end + "8q", head[16:80])
            offset = struct.unpack(end + "q", head[168:176])[0]
            break
    else:
        return None
    n = dims[0]
    if not 1 <= n <= 7 or bitpix <= 0:
        return None
    count = 1
    for d in dims[1:n + 1]:
        count *= max(int(d), 1)
    return max(offset, 348) + count * bitpix // 8


def nifti_truncation(path: str) -> str | None:
    """None when the file is complete (or not a NIfTI we can check), else the one-line reason."""
    gz = path.lower().endswith(".gz")
    try:
        if not gz:
            with open(path, "rb") as fp:
                expected = _declared_end(fp.read(540))
            size = os.path.getsize(path)
            if expected is not None and size < expected:
                return f"truncated NIfTI file ({size} of {expected} bytes the header declares)"
            return None
        with gzip.open(path, "rb") as fp:
            expected = _declared_end(fp.read(540))
            if expected is None:
                return None
            fp.seek(0)
            got = 0
            while got < expected:
                chunk = fp.read(min(1 << 22, expected - got))
                if not chunk:
                    break
                got += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        return f"truncated or corrupt NIfTI.gz file ({type(exc).__name__}: {exc})"[:200]
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if got < expected:
        return f"truncated NIfTI.gz file ({got} of {expected} decompressed bytes the header declares)"
    return None


def _nifti1_header(path: str) -> tuple[str, bytes] | None:
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fp:  # type: ignore[operator]
            head = fp.read(348)
    except (OSError, EOFError, zlib.error):
        return None
    for end in ("<", ">"):
        if len(head) == 348 and struct.unpack(end + "i", head[:4])[0] == 348:
            return end, head
    return None


def invalid_geometry_fields(path: str) -> list[str]:
    """Header geometry fields that are non-finite or non-positive (NIfTI-1). ITK replaces
    them without a word (NaN or 0 voxel size -> 1 mm, a negative one -> flipped axis, a NaN
    offset -> 0), so the caller reports them next to the values ITK used."""
    found = _nifti1_header(path)
    if found is None:
        return []
    end, head = found
    ndim = max(1, min(3, struct.unpack(end + "h", head[40:42])[0]))
    pixdim = struct.unpack(end + "8f", head[76:108])[1:ndim + 1]
    qform, sform = struct.unpack(end + "hh", head[252:256])
    out = []
    if not all(math.isfinite(v) and v > 0 for v in pixdim):
        out.append("voxel size pixdim (" + ", ".join(f"{v:g}" for v in pixdim) + ")")
    if qform > 0 and not all(math.isfinite(v) for v in struct.unpack(end + "6f", head[256:280])):
        out.append("qform (quaternion/offset)")
    if sform > 0 and not all(math.isfinite(v) for v in struct.unpack(end + "12f", head[280:328])):
        out.append("sform (srow_x/y/z)")
    return out


__all__ = ["invalid_geometry_fields", "nifti_truncation"]
