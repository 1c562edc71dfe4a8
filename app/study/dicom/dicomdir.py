"""DICOMDIR: the files a media directory references (PS3.10 / PS3.3 F.3)."""
from __future__ import annotations

import os
from pathlib import Path

from ..volume import LoadError
from .errors import ReadFailure, one_line
from .header import is_dicomdir, read_header


def _resolve(root: Path, parts: list[str]) -> Path | None:
    """Referenced File IDs are upper-case on media; match case-insensitively if needed."""
    exact = root.joinpath(*parts)
    if exact.is_file():
        return exact
    cur = root
    for part in parts:
        try:
            match = next((e for e in os.scandir(cur) if e.name.lower() == part.lower()), None)
        except OSError:
            return None
        if match is None:
            return None
        cur = Path(match.path)
    return cur if cur.is_file() else None


def referenced_files(path: str) -> tuple[list[str], list[LoadError]]:
    """The image files a DICOMDIR points at (in record order), and the missing ones."""
    try:
        ds, _ = read_header(path)
    except ReadFailure as exc:
        return [], [LoadError(path, exc.reason)]
    if not is_dicomdir(ds):
        return [], [LoadError(path, "not a DICOMDIR (no directory records)")]
    root = Path(path).parent
    files: list[str] = []
    errors: list[LoadError] = []
    try:
        records = list(ds.get("DirectoryRecordSequence") or [])
    except Exception as exc:  # malformed sequences in damaged DICOMDIRs
        return [], [LoadError(path, f"unreadable DICOMDIR records ({one_line(exc, 100)})")]
    for rec in records:
        ref = rec.get("ReferencedFileID")
        if not ref:
            continue
        parts = [str(p) for p in (ref if not isinstance(ref, str) else [ref])]
        parts = [p for part in parts for p in part.replace("\\", "/").split("/") if p]
        found = _resolve(root, parts)
        if found is None:
            errors.append(LoadError(str(root.joinpath(*parts)), "referenced by DICOMDIR but missing"))
        else:
            files.append(str(found))
    if not files and not errors:
        errors.append(LoadError(path, "DICOMDIR references no files"))
    return list(dict.fromkeys(files)), errors
