"""Header scan: read a file's DICOM header (never its pixel data) into per-frame records.

Every 2D image that can end up in a volume is a :class:`FrameRef`: a single-frame file
or one frame of a multi-frame file. Grouping, splitting and sorting work on these
records only, so the pixel pass can later decode each frame straight into the final
array without holding a series twice in memory.
"""
from __future__ import annotations

import os
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from .attributes import _num, _text
from .errors import ReadFailure, one_line
from .frame_ref import FrameRef
from .multiframe import frames_of
from .sanity import check_frames
from .fragments import check_fragments
from ..limits import over_cap

# Transfer syntaxes whose pixel data we read ourselves (seek + readinto), skipping
# pydicom's decode machinery: the common case of uncompressed little-endian series.
NATIVE_LE = {
    pydicom.uid.ExplicitVRLittleEndian,
    pydicom.uid.ImplicitVRLittleEndian,
}
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel, Float, Double Float Pixel Data


def read_header(path: str) -> tuple[Dataset, int | None]:
    """dcmread without pixel data, plus the offset of the pixel data element
    (-1: there is pixel data but no usable offset, as in deflated files).

    Files without a preamble/meta header are only force-read when their first bytes
    look like a DICOM data element, so random files are rejected quickly and cleanly.
    """
    try:
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                fp.seek(0)
                if not _looks_like_raw_dicom(fp.read(8)):
                    raise ReadFailure("not a DICOM file") from None
                fp.seek(0)
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            # pydicom rewinds to the start of the pixel data tag when it stops there.
            offset = fp.tell()
            at_pixels = fp.read(4)
    except ReadFailure:
        raise
    except OSError as exc:
        raise ReadFailure(f"cannot read file: {exc.strerror or exc}") from None
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise ReadFailure(f"not a readable DICOM file ({one_line(exc, 120)})") from None
    if transfer_syntax(ds) == pydicom.uid.DeflatedExplicitVRLittleEndian:
        # The offset above is in the compressed stream; look at the inflated dataset.
        try:
            full = pydicom.dcmread(path, force=True)
        except Exception as exc:
            raise ReadFailure(f"cannot inflate deflated dataset ({one_line(exc, 120)})") from None
        return ds, (-1 if any(t in full for t in PIXEL_TAGS) else None)
    has_pixels = len(at_pixels) == 4
    return ds, (offset if has_pixels else None)


def _looks_like_raw_dicom(head: bytes) -> bool:
    if len(head) < 8:
        return False
    le_group = int.from_bytes(head[0:2], "little")
    be_group = int.from_bytes(head[0:2], "big")
    return le_group in (0x0002, 0x0008) or be_group in (0x0002, 0x0008)


def transfer_syntax(ds: Dataset) -> UID:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts:
        return UID(ts)
    # Headerless files: pydicom worked out the encoding while reading.
    if getattr(ds, "is_little_endian", True) is False:
        return pydicom.uid.ExplicitVRBigEndian
    if getattr(ds, "is_implicit_VR", False):
        return pydicom.uid.ImplicitVRLittleEndian
    return pydicom.uid.ExplicitVRLittleEndian


def check_decodable(ts: UID) -> None:
    """Fail early, with a one-line reason, when no plugin can decode ``ts``."""
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise ReadFailure(f"unsupported transfer syntax {ts.name} ({ts})") from None
    if not decoder.is_available:
        missing = "; ".join(decoder.missing_dependencies) or "no plugin"
        raise ReadFailure(f"no decoder installed for transfer syntax {ts.name} ({missing})")


def is_dicomdir(ds: Dataset) -> bool:
    sop = _text(getattr(ds, "file_meta", Dataset()), "MediaStorageSOPClassUID")
    return sop == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds


def scan_file(path: str) -> list[FrameRef]:
    """All image frames in one DICOM file, or ReadFailure with the reason."""
    ds, offset = read_header(path)
    if is_dicomdir(ds):
        raise ReadFailure("DICOMDIR (open it directly to follow its references)")
    if offset is None:
        sop = _text(ds, "SOPClassUID")
        name = UID(sop).name if sop else "unknown SOP class"
        raise ReadFailure(f"no image data ({name})")
    rows, cols = int(_num(ds, "Rows", 0) or 0), int(_num(ds, "Columns", 0) or 0)
    if rows <= 0 or cols <= 0:
        raise ReadFailure("pixel data without Rows/Columns")
    ts = transfer_syntax(ds)
    check_decodable(ts)
    n_frames = max(int(_num(ds, "NumberOfFrames", 1) or 1), 1)
    samples = int(_num(ds, "SamplesPerPixel", 1) or 1)
    # Declared sizes are checked before anything is allocated for them (limits.py).
    if (too_big := over_cap((cols, rows, n_frames))):
        raise ReadFailure(too_big)
    bits_allocated = int(_num(ds, "BitsAllocated", 16) or 16)
    float_pixels = False
    native_offset = None
    photometric = _text(ds, "PhotometricInterpretation").upper() or "MONOCHROME2"
    # YBR_FULL_422 stores two samples per pixel (chroma subsampled) when uncompressed.
    stored_samples = 2 if (photometric == "YBR_FULL_422" and samples == 3) else samples
    with open(path, "rb") as fp:
        fp.seek(max(offset, 0))
        tag_bytes = fp.read(4)
        tag = (int.from_bytes(tag_bytes[:2], "little") << 16) | int.from_bytes(tag_bytes[2:], "little")
        if ts != pydicom.uid.ExplicitVRBigEndian and tag in (0x7FE00008, 0x7FE00009):
            float_pixels = True
        if ts in NATIVE_LE:
            native_offset = _check_native_length(fp, offset, ts, rows * cols * stored_samples * n_frames, bits_allocated)
        elif offset >= 0 and ts.is_encapsulated:
            check_fragments(fp, offset, n_frames, ts.name)

    common = dict(
        path=path,
        n_frames=n_frames,
        header=ds,
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        instance_uid=_text(ds, "SOPInstanceUID"),
        modality=_text(ds, "Modality").upper() or "OT",
        rows=rows,
        cols=cols,
        samples=samples,
        photometric=photometric,
        bits_allocated=bits_allocated,
        bits_stored=int(_num(ds, "BitsStored", bits_allocated) or bits_allocated),
        pixel_rep=int(_num(ds, "PixelRepresentation", 0) or 0),
        float_pixels=float_pixels,
        transfer_syntax=ts,
        instance_number=int(_num(ds, "InstanceNumber", 0) or 0),
        pixel_offset=native_offset,
        has_modality_lut="ModalityLUTSequence" in ds,
    )
    frames = frames_of(ds, common)
    check_frames(frames)
    return frames


def _check_native_length(fp: Any, offset: int, ts: UID, n_samples: int, bits: int) -> int:
    """Offset of the first pixel value; truncated pixel data is found here, before
    any pixel is read."""
    fp.seek(offset)
    head = fp.read(12)
    explicit = ts == pydicom.uid.ExplicitVRLittleEndian
    if explicit and head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN"):
        length, start = int.from_bytes(head[8:12], "little"), offset + 12
    else:
        length, start = int.from_bytes(head[4:8], "little"), offset + 8
    if length == 0xFFFFFFFF:
        raise ReadFailure(f"encapsulated pixel data in an uncompressed transfer syntax ({ts.name})")
    expected = (n_samples * bits + 7) // 8
    available = os.fstat(fp.fileno()).st_size - start
    if min(length, available) < expected:
        raise ReadFailure(f"truncated pixel data (expected {expected} bytes, found {min(length, available)})")
    return start


__all__ = [
    "FrameRef",
    "NATIVE_LE",
    "PIXEL_TAGS",
    "ReadFailure",
    "check_decodable",
    "is_dicomdir",
    "read_header",
    "scan_file",
    "transfer_syntax",
]
