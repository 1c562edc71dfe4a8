"""Where retrieved instances go and how each is checked: ``<out>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm``,
written to a temporary name and renamed (a crash or Ctrl-C never leaves half a file under the
real name), verified before the rename, and recognised as already there on the next run (resume).
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Callable

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def safe_uid(uid: str) -> str:
    """A UID used as a file or folder name: digits and dots only (a server's UID is not trusted)."""
    uid = str(uid).strip().rstrip("\x00")
    if not _UID_RE.match(uid) or len(uid) > 64:
        raise ValueError(f"not a valid DICOM UID: {uid[:80]!r}")
    return uid


def instance_path(out_dir: Path, study_uid: str, series_uid: str, sop_uid: str) -> Path:
    return Path(out_dir) / safe_uid(study_uid) / safe_uid(series_uid) / f"{safe_uid(sop_uid)}.dcm"


def verify_instance(ds: Dataset, study_uid: str, sop_uid: str | None, series_uid: str | None = None) -> str:
    """"" when the dataset is the instance asked for with consistent pixel data, else the reason."""
    got_sop = str(ds.get("SOPInstanceUID", ""))
    if not got_sop:
        return "no SOPInstanceUID"
    if sop_uid and got_sop != sop_uid:
        return f"SOPInstanceUID is {got_sop}, asked for {sop_uid}"
    if str(ds.get("StudyInstanceUID", "")) != study_uid:
        return f"StudyInstanceUID is {ds.get('StudyInstanceUID', '(none)')}, asked for {study_uid}"
    if series_uid and str(ds.get("SeriesInstanceUID", "")) != series_uid:
        return f"SeriesInstanceUID is {ds.get('SeriesInstanceUID', '(none)')}, asked for {series_uid}"
    return _pixel_data_problem(ds)


def _pixel_data_problem(ds: Dataset) -> str:
    if "PixelData" not in ds:
        if "Rows" in ds and not {"FloatPixelData", "DoubleFloatPixelData"} & set(ds.dir()):
            return "an image without pixel data (truncated?)"
        return ""  # SR, PDF, ...: nothing to check
    ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "1.2.840.10008.1.2.1")
    raw = ds.PixelData
    if ts not in _NATIVE:
        return "" if raw else "empty encapsulated pixel data"
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        spp, bits = int(ds.get("SamplesPerPixel", 1)), int(ds.BitsAllocated)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return "pixel data without usable Rows/Columns/BitsAllocated"
    expected = (rows * cols * spp * frames * bits + 7) // 8
    if not expected <= len(raw) <= expected + 1:  # one pad byte keeps the length even
        return f"pixel data is {len(raw)} bytes, {expected} expected for {rows}x{cols}x{frames} at {bits} bits"
    return ""


def _with_file_meta(ds: Dataset) -> Dataset:
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1") if not ds.is_implicit_VR else UID("1.2.840.10008.1.2")
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    return ds


def part10(ds: Dataset) -> Dataset:
    """A shallow copy of ``ds`` that encodes as a conformant Part-10 file (preamble, DICM, file
    meta with a transfer syntax). A dataset built in memory often lacks them; STOW-RS then
    sends, and Orthanc stores, a file no DICOM reader opens without ``force``."""
    copy = Dataset(ds)
    meta = getattr(ds, "file_meta", None)
    copy.file_meta = FileMetaDataset(meta) if meta is not None else FileMetaDataset()
    if "TransferSyntaxUID" not in copy.file_meta:
        copy.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.1")
    copy.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    copy.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    copy.preamble = getattr(ds, "preamble", None) or b"\0" * 128
    return copy


def write_atomic(ds: Dataset, path: Path, check: Callable[[Path], str] | None = None) -> Path:
    """Write ``ds`` as a DICOM Part-10 file at ``path`` via a temporary file in the same folder.

    ``check(tmp)`` reads the written file back; a non-empty reason removes it and raises
    ValueError, so only a file that passed is ever under the real name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _with_file_meta(ds)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-", suffix=".dcm")
    try:
        with os.fdopen(fd, "wb") as f:
            ds.save_as(f, enforce_file_format=True)
            f.flush()
            os.fsync(f.fileno())
        problem = check(Path(tmp)) if check is not None else ""
        if problem:
            raise ValueError(f"the written file failed its check: {problem}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def file_problem(path: Path, study_uid: str, sop_uid: str) -> str:
    """"" when ``path`` is a readable DICOM file of this very instance, else the reason."""
    try:
        ds = pydicom.dcmread(path)
        if "PixelData" in ds:
            ds.PixelData  # noqa: B018 - force the read: a truncated file fails here
    except Exception as exc:  # noqa: BLE001 - damaged or truncated
        return f"unreadable ({exc.__class__.__name__})"
    return verify_instance(ds, study_uid, sop_uid)


def already_present(path: Path, study_uid: str, sop_uid: str) -> bool:
    """True when ``path`` is a readable DICOM file of this very instance (a resume skips it)."""
    return path.is_file() and file_problem(path, study_uid, sop_uid) == ""
