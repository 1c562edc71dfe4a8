"""The export's one error type and the closed set of objects it writes."""
from __future__ import annotations

from enum import Enum


class ExportKind(str, Enum):
    """The DICOM objects a run can be exported as."""

    SEG = "seg"  # DICOM Segmentation of the exported masks
    SR = "sr"  # TID 1500 Measurement Report in a Comprehensive 3D SR
    PDF = "pdf"  # the evidence report as Encapsulated PDF


ALL_KINDS: frozenset[ExportKind] = frozenset(ExportKind)


class ExportError(Exception):
    """A run cannot be exported as asked; the message is one line naming the run and the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
