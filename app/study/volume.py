"""The one normalized image model every loader produces and every consumer reads.

Conventions (the same as ITK/SimpleITK, so NRRD/NIfTI and DICOM agree):
- ``array`` is indexed ``[z, y, x]`` (slice, row, column); RGB images add a trailing
  channel axis ``[z, y, x, 3]`` of uint8.
- Voxel values are in modality units: Rescale Slope/Intercept applied (HU for CT).
- ``spacing``/``origin`` are ``(x, y, z)`` in millimetres, in the LPS patient frame.
- ``direction`` is a 3×3 matrix whose *columns* are the LPS unit vectors of the x, y and
  z array axes (ITK convention). Serialised row-major (``direction.ravel()``) it is the
  9-number form ``info`` prints. Loaders make it right-handed (det = +1) by reversing the
  slice axis where a file is left-handed, so the same anatomy always has one layout.
- The physical position of voxel index ``(i, j, k)`` (x, y, z) is
  ``origin + direction @ (spacing * (i, j, k))``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class SourceFormat(str, enum.Enum):
    DICOM = "dicom"
    NIFTI = "nifti"
    NRRD = "nrrd"
    META = "mha"
    IMAGE2D = "image2d"


class ModalitySource(str, enum.Enum):
    """Where ``Volume.modality`` / ``modality_hint`` came from."""

    HEADER = "header"  # the file says (DICOM Modality)
    HU_RANGE = "detected from HU range"  # no modality in the file; the values are CT HU (modality_hint "CT")
    NONE = "none"  # no modality in the file and none detected ("OT")


@dataclass(frozen=True)
class Window:
    """Display window in modality units."""

    center: float
    width: float
    name: str = ""

    @property
    def low(self) -> float:
        return self.center - self.width / 2.0

    @property
    def high(self) -> float:
        return self.center + self.width / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {"center": float(self.center), "width": float(self.width), "name": self.name}


@dataclass(frozen=True)
class PatientInfo:
    """Identifying fields kept apart so reports can remove them (de-identification)."""

    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    accession: str = ""
    institution: str = ""


# eq=False: a volume is one loaded image, compared by identity (``is``, ``in``,
# ``list.index``, dict/set keys). Field-wise ``==`` would compare numpy arrays and raise
# "truth value of an array is ambiguous" as soon as a list holds two volumes.
@dataclass(eq=False)
class Volume:
    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    modality: str = "OT"
    series_uid: str = ""
    study_uid: str = ""
    description: str = ""
    window: Window = field(default_factory=lambda: Window(0.0, 1.0, "auto"))
    source_format: SourceFormat = SourceFormat.DICOM
    source_files: list[str] = field(default_factory=list)
    # One header per slice/frame for the tag browser (pydicom Datasets without pixel
    # data for DICOM; a flat ``dict`` of metadata for other formats).
    headers: list[Any] = field(default_factory=list)
    frames: int = 1
    patient: PatientInfo = field(default_factory=PatientInfo)
    # Non-fatal remarks made while loading (e.g. "non-uniform slice spacing").
    warnings: list[str] = field(default_factory=list)
    # True when array z is time (a cine: frames of one position over time), not space.
    # Such a stack has no coronal/sagittal: a reformat would cut across time.
    temporal: bool = False
    # --- presentation (issue 13): how the stored values are meant to be shown ---------
    # Projection radiograph (CR/DX/MG/...: no ImageOrientationPatient): its direction
    # matrix is a placeholder, so edge labels come from ``patient_orientation`` only.
    projection: bool = False
    # DICOM PatientOrientation (row direction, column direction), e.g. ("R", "F"); None: absent.
    patient_orientation: tuple[str, str] | None = None
    # Where the in-plane spacing came from: "PixelSpacing" (NIfTI/NRRD/MHA: the header's
    # voxel spacing), "ImagerPixelSpacing" (at the detector), "UltrasoundRegion" or "none"
    # (spacing is then a placeholder 1 and the viewer measures in pixels).
    spacing_source: str = "PixelSpacing"
    # MONOCHROME1: low values are white. Values stay as stored; only the display inverts.
    invert_display: bool = False
    # Every VOI window in the file (WindowCenter/Width pairs), cycled in the viewer.
    voi_windows: list[Window] = field(default_factory=list)
    # DICOM overlay planes (60xx): app.study.overlay_planes.DicomOverlay, one per plane and slice.
    dicom_overlays: list[Any] = field(default_factory=list)
    # Cine playback rate the file states (frames/s) and where it came from, e.g.
    # "FrameTime 33.333 ms"; None/"" when the file states none (the viewer says its default).
    frame_rate: float | None = None
    frame_rate_source: str = ""
    # The file's modality is kept as is ("OT" for NIfTI/NRRD); a modality read from the values
    # (app.study.modality_hint: "CT" for HU) is a hint beside it, never written over it.
    modality_source: ModalitySource = ModalitySource.HEADER
    modality_hint: str = ""
    # One file's image shown while a large series is still being read and sorted
    # (app.study.dicom.scan): not the series. Measurements and runs refuse it.
    provisional: bool = False

    @property
    def hu_values(self) -> bool:
        """CT Hounsfield values: the header says CT, or (NIfTI/NRRD) the value range showed HU.
        What CT window presets need; the modality itself stays the file's."""
        return not self.is_rgb and (self.modality.upper() == "CT" or self.modality_hint == "CT")

    def __post_init__(self) -> None:
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]

    # ----- shape -------------------------------------------------------------------
    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    @property
    def size(self) -> tuple[int, int, int]:
        """(x, y, z) as in ``info``."""
        z, y, x = self.array.shape[:3]
        return (int(x), int(y), int(z))

    @property
    def num_slices(self) -> int:
        return int(self.array.shape[0])

    def slice(self, k: int) -> np.ndarray:
        """The k-th slice along the slice (z) axis, a view, [y, x] (or [y, x, 3])."""
        return self.array[k]

    # ----- geometry ----------------------------------------------------------------
    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) continuous indices in (x, y, z) order -> (N, 3) LPS millimetres."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=float))
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing)) @ self.direction.T

    def lps_to_index(self, lps: np.ndarray) -> np.ndarray:
        """(N, 3) LPS millimetres -> (N, 3) continuous (x, y, z) indices."""
        lps = np.atleast_2d(np.asarray(lps, dtype=float))
        rel = (lps - np.asarray(self.origin)) @ np.linalg.inv(self.direction).T
        return rel / np.asarray(self.spacing)

    # ----- summary -----------------------------------------------------------------
    def stats(self) -> tuple[float, float, float]:
        a = self.array
        return float(a.min()), float(a.max()), float(a.mean(dtype=np.float64))

    @property
    def display_name(self) -> str:
        parts = [self.modality, self.description or Path(self.source_files[0]).name if self.source_files else self.modality]
        return " · ".join(p for p in parts if p)


@dataclass(frozen=True)
class LoadError:
    """A file (or folder) that could not be read, with a one-line reason."""

    path: str
    reason: str
    # The series the file belongs to when its header could be read (for per-series reports).
    series_uid: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class DicomDocument:
    """A non-image DICOM object found while loading (a structured report, an encapsulated
    PDF): kept so the window can read it (e.g. a CARE SR as a past run), never an error."""

    path: str
    sop_class_uid: str
    sop_instance_uid: str = ""
    study_uid: str = ""
    series_uid: str = ""
    modality: str = ""


@dataclass
class LoadResult:
    volumes: list[Volume] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    # DICOM SEG objects placed on the loaded volumes (app.study.dicom.seg_reader.SegOverlay).
    segmentations: list[Any] = field(default_factory=list)
    documents: list[DicomDocument] = field(default_factory=list)
    # True when the caller's cancel() stopped the load (volumes then holds nothing partial).
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return bool(self.volumes)
