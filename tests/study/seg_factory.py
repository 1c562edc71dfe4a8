"""DICOM SEGs built with highdicom on the shared CT, for the SEG reader's tests (and the
window tests that reopen one as an overlay)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom


def ct_sources(ct_dicom_dir: Path) -> list[pydicom.Dataset]:
    """The CT's instances, sorted from feet to head (the loaded volume's slice order)."""
    sources = [pydicom.dcmread(p) for p in sorted(ct_dicom_dir.glob("*.dcm"))]
    sources.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    return sources


def description(number: int = 1, label: str = "Tumour", color: str | None = None, algorithm: str | None = None):
    import highdicom as hd

    algo = None
    if algorithm:
        algo = hd.AlgorithmIdentificationSequence(
            name=algorithm, family=hd.sr.CodedConcept("123109", "DCM", "Manual Processing"), version="1.0"
        )
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=hd.sr.CodedConcept("49755003", "SCT", "Morphologically abnormal structure"),
        segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if algo else hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        algorithm_identification=algo,
        display_color=hd.color.CIELabColor.from_string(color) if color else None,
    )


def _common(series_number: int = 100) -> dict:
    import highdicom as hd

    return dict(
        series_instance_uid=hd.UID(), series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="CARE tests", manufacturer_model_name="seg_factory", software_versions="1",
        device_serial_number="1",
    )


def axial_seg(sources, label: np.ndarray, *, fractional: np.ndarray | None = None, color: str | None = None,
              segments: int = 1):
    """A SEG of ``label`` ([z, y, x] on the CT grid), one frame per source slice (empty ones
    omitted by highdicom). ``segments`` > 1 adds a second segment (the label shifted right)."""
    import highdicom as hd

    if fractional is not None:
        return hd.seg.Segmentation(
            source_images=sources, pixel_array=fractional.astype(np.float32),
            segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL,
            segment_descriptions=[description(color=color)], **_common(),
        )
    pixel = label.astype(np.uint8)
    descs = [description(color=color)]
    if segments > 1:
        second = np.roll(label, 40, axis=2)
        pixel = np.stack([label, second], axis=-1).astype(np.uint8)
        descs.append(description(2, "Shifted copy", color="blue"))
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=pixel, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descs, **_common(),
    )


def sagittal_seg(sources, label: np.ndarray, volume):
    """The same label stored as sagittal frames (rows run head to feet, columns front to
    back): another orientation and pixel grid than the CT's axial slices."""
    import highdicom as hd

    nz, ny, nx = label.shape
    sx, sy, sz = volume.spacing
    ox, oy, oz = volume.origin
    xs = [i for i in range(nx) if label[:, :, i].any()]
    frames = np.stack([label[::-1, :, i] for i in xs]).astype(np.uint8)  # [frame, row = -z, col = y]
    positions = [hd.PlanePositionSequence("PATIENT", (ox + i * sx, oy, oz + (nz - 1) * sz)) for i in xs]
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description(label="Tumour (sagittal)")],
        plane_orientation=hd.PlaneOrientationSequence("PATIENT", (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)),
        plane_positions=positions,
        pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=(sz, sy), slice_thickness=sx),
        **_common(101),
    )


def coarse_seg(sources, coarse: np.ndarray, volume):
    """``coarse`` ([z, y/2, x/2]) stored at twice the CT's pixel spacing, each SEG pixel centred
    on a 2x2 block of CT voxels: the same orientation, another pixel grid."""
    import highdicom as hd

    sx, sy, sz = volume.spacing
    ox, oy, oz = volume.origin
    ks = [k for k in range(coarse.shape[0]) if coarse[k].any()]
    positions = [hd.PlanePositionSequence("PATIENT", (ox + 0.5 * sx, oy + 0.5 * sy, oz + k * sz)) for k in ks]
    return hd.seg.Segmentation(
        source_images=sources, pixel_array=coarse[ks].astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description(label="Tumour (coarse)")],
        plane_orientation=hd.PlaneOrientationSequence("PATIENT", (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)),
        plane_positions=positions,
        pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=(2 * sy, 2 * sx), slice_thickness=sz),
        **_common(102),
    )
