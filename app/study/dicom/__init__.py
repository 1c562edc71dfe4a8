"""DICOM reading: header scan + grouping, geometry sort/split, pixel decoding,
DICOMDIR, multi-frame and Enhanced CT/MR. Entry point: :func:`load_dicom`."""
from .assemble import Cancelled
from .dicomdir import referenced_files
from .errors import ReadFailure
from .header import FrameRef, is_dicomdir, read_header, scan_file
from .reader import load_dicom

__all__ = ["Cancelled", "FrameRef", "ReadFailure", "is_dicomdir", "load_dicom", "read_header", "referenced_files", "scan_file"]
