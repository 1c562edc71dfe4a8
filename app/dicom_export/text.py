"""Text as DICOM accepts it: the record's strings are kept, only what a VR forbids is changed.

Model output can hold control characters (a tiny model's answer holds BEL); DICOM text VRs
allow none but TAB/LF/FF/CR (and ESC for ISO 2022, which we never use: UTF-8 throughout), so
each is written as U+FFFD and the export says so. Short VRs (LO 64, SH 16) are cut to
their length in UTF-8 bytes with "...", and the export says so.
"""
from __future__ import annotations

import re

_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_ONE_LINE = re.compile(r"[\t\n\x0c\r]+")


def clean(text: str, notes: list[str] | None = None, what: str = "text") -> str:
    """``text`` with the control characters DICOM forbids replaced (noted in ``notes``)."""
    out, n = _FORBIDDEN.subn("\ufffd", str(text))
    if n and notes is not None:
        note = f"{what}: {n} control character{'s' if n > 1 else ''} written as U+FFFD (DICOM text allows none)"
        if note not in notes:
            notes.append(note)
    return out


def short(text: str, limit: int, notes: list[str] | None = None, what: str = "text") -> str:
    """One line of at most ``limit`` characters (LO = 64, SH = 16); backslash is a value separator."""
    line = _ONE_LINE.sub(" ", clean(text, notes, what)).replace("\\", "/").strip()
    if len(line.encode("utf-8")) <= limit:
        return line
    if notes is not None:
        note = f"{what} cut to {limit} bytes (the DICOM attribute allows no more): {line!r}"
        if note not in notes:
            notes.append(note)
    # Validators count bytes: cut by UTF-8 length, never inside a character; "..." is 3 bytes.
    cut = line.encode("utf-8")[: limit - 3].decode("utf-8", "ignore").rstrip()
    return cut + "..."
