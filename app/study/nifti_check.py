"""Is a NIfTI file as long as its header says? (SimpleITK may zero-fill a cut file.)

Why: a NIfTI cut in half (an interrupted copy or download) would otherwise load with its
missing half silently black. The header declares where the voxels start and how many there
are; the file (for .nii.gz: the decompressed stream) must hold at least that many bytes.
"""
from __future__ import annotations

import gzip
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


__all__ = ["nifti_truncation"]
