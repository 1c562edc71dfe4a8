"""Encapsulated (compressed) pixel data: does the file hold as many frames as it declares?

Why: a 300 kB file may declare 100 million frames; the volume array for them would be
allocated before the first decode fails. Every frame of encapsulated pixel data is at
least one item (8-byte header) after the Basic Offset Table (PS3.5 A.4), so counting the
items — header reads only, stopping once there are enough — bounds the real frame count.
"""
from __future__ import annotations

import os
from typing import BinaryIO

from .errors import ReadFailure

_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) little endian
_SEQ_END = b"\xfe\xff\xdd\xe0"  # (FFFE,E0DD)


def check_fragments(fp: BinaryIO, offset: int, n_frames: int, syntax: str) -> None:
    """Raises ReadFailure when the pixel data at ``offset`` holds fewer fragments than
    ``n_frames``. ``offset`` is the position of the (7FE0,0010) tag."""
    size = os.fstat(fp.fileno()).st_size
    if n_frames > 1 and (size - offset) // 8 < n_frames + 1:
        raise ReadFailure(f"declares {n_frames} frames but the file ({size} bytes) is too small to hold them")
    fp.seek(offset + 12)  # tag, VR OB, 2 reserved bytes, undefined length
    items = 0
    pos = offset + 12
    while items <= n_frames:  # the Basic Offset Table item + at least one per frame
        head = fp.read(8)
        if len(head) < 8 or head[:4] == _SEQ_END:
            break
        if head[:4] != _ITEM:
            return  # not the layout we can count: leave it to the decoder's own checks
        length = int.from_bytes(head[4:8], "little")
        pos += 8 + length
        if pos > size:
            raise ReadFailure(f"truncated pixel data ({syntax}): fragment {items} ends past the end of the file")
        items += 1
        fp.seek(pos)
    fragments = max(items - 1, 0)
    if fragments < n_frames:
        raise ReadFailure(f"declares {n_frames} frames but the encapsulated pixel data holds only {fragments} fragment(s) ({syntax})")


__all__ = ["check_fragments"]
