"""Edge labels and plane names that are never invented.

Cross-sectional series (with ImageOrientationPatient) get their labels from the
direction matrix (reformat.SliceGeometry.edge_labels). A projection image (CR/DX/MG/...)
has no patient frame, so its labels come from PatientOrientation alone (PS3.3
C.7.6.1.1.1: the direction of the rows, i.e. increasing column index, then of the
columns, i.e. increasing row index); with neither, there are no labels at all.
"""
from __future__ import annotations

from .reformat import EdgeLabels, Plane, SliceGeometry, native_plane, slice_geometry
from .volume import SourceFormat, Volume

_OPPOSITE = {"L": "R", "R": "L", "A": "P", "P": "A", "H": "F", "F": "H"}
# Modalities that are slices of a volume even without orientation (no "Projection").
_CROSS_SECTIONAL = {"CT", "MR", "PT", "NM"}
# Sectional images with no patient frame: an ultrasound or OCT frame is a cut, not a projection.
_SECTIONAL_2D = {"US", "IVUS", "OCT", "OPT"}


def _opposite(code: str) -> str | None:
    if not code or any(c not in _OPPOSITE for c in code):
        return None
    return "".join(_OPPOSITE[c] for c in code)


def projection_labels(orientation: tuple[str, str] | None) -> EdgeLabels | None:
    """Labels of the native view from PatientOrientation, e.g. ("R", "F") -> right R,
    left L, top H, bottom F; None when absent or not made of L/R/A/P/H/F codes."""
    if orientation is None:
        return None
    row, col = orientation
    left, top = _opposite(row), _opposite(col)
    if left is None or top is None:
        return None
    return EdgeLabels(left=left, right=row, top=top, bottom=col)


def view_edge_labels(volume: Volume, geom: SliceGeometry) -> EdgeLabels | None:
    """Labels for ``geom`` of ``volume``, or None when the file does not say."""
    if volume.source_format == SourceFormat.IMAGE2D:
        return None
    if volume.projection:
        return projection_labels(volume.patient_orientation) if geom.slice_axis == 0 else None
    return geom.edge_labels()


def native_edge_labels(volume: Volume) -> EdgeLabels | None:
    """Labels of the acquisition-plane view (the one ``info`` reports)."""
    return view_edge_labels(volume, slice_geometry(volume, native_plane(volume)))


def plane_name(volume: Volume, plane: Plane) -> str:
    """The plane shown in the corner: never "Axial" for a radiograph or a picture."""
    if volume.source_format == SourceFormat.IMAGE2D:
        return "Image"
    if volume.projection:
        return "Image" if volume.modality.upper() in _CROSS_SECTIONAL | _SECTIONAL_2D else "Projection"
    return plane.value.capitalize()


__all__ = ["native_edge_labels", "plane_name", "projection_labels", "view_edge_labels"]
