"""The per-frame record of the header scan (its own module so that header.py and
multiframe.py, which both build these, need not import each other)."""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import UID


@dataclass(slots=True)
class FrameRef:
    """One 2D image (a file, or one frame of a multi-frame file) and its geometry."""

    path: str
    frame: int  # frame index inside the file (0 for single-frame files)
    n_frames: int  # NumberOfFrames of the file
    header: Dataset  # shared by all frames of one file; no pixel data
    study_uid: str
    series_uid: str
    instance_uid: str
    modality: str
    rows: int
    cols: int
    samples: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_rep: int
    float_pixels: bool
    transfer_syntax: UID
    orientation: tuple[float, ...] | None  # 6 direction cosines (row, col)
    position: tuple[float, float, float] | None
    pixel_spacing: tuple[float, float]  # (row spacing = y, column spacing = x)
    slice_thickness: float | None
    spacing_between: float | None
    slope: float
    intercept: float
    window: tuple[float, float] | None  # (center, width) from the file
    echo: str  # echo number/time; frames with different echoes never share a volume
    stack: str  # extra split key (enhanced StackID / temporal index)
    instance_number: int
    temporal: dict[str, str]  # candidate keys that can separate duplicate positions
    pixel_offset: int | None  # file offset of the first native LE pixel value
    has_modality_lut: bool
    # Header values that were present but unusable, and what was assumed instead (volume warnings).
    notes: tuple[str, ...] = ()
