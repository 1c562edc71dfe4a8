"""DICOM Segmentation (highdicom) of a run's exported masks on the source instance.

BINARY, one segment per exported mask, each frame on the exact source instance (its
SOPInstanceUID is the frame's referenced image) in the file's own pixel order: the run's
display-frame mask is mapped back with ``DisplayFrame.to_array``. The segment label is the
entity; the segment description states the mask confidence and how it was accepted; the
algorithm identification names the segmenter, its revision and its weights sha256.
"""
from __future__ import annotations

from typing import Callable

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app import __version__
from app.pipeline.record import RunRecord
from app.pipeline.vocab import EntitySource

from .provenance import algorithm, segmenter_info
from .selection import ExportedMask, MaskSelection
from .source import SourceInstance
from .text import short

MANUFACTURER = "CARE Viewer"
SEG_SERIES_NUMBER = 9701
SEG_SERIES_DESCRIPTION = "CARE masks"
# The entity is free text from a model or a clinician, not a coded finding: the segment says
# only that it is a region, and its label carries the entity.
CATEGORY = codes.SCT.SpatialAndRelationalConcept
PROPERTY = codes.DCM.ImageRegion


def tracking_uid(record: RunRecord, index: int) -> str:
    """The same UID for the same mask (index into record.masks) of the same run: the SEG
    segment and the SR's measurement group of one mask share it."""
    return generate_uid(entropy_srcs=["care-mask", record.run_id, str(index)])


def describe(item: ExportedMask) -> str:
    m = item.mask
    how = "accepted by a clinician below tau" if item.clinician_accepted else "accepted"
    return f"C={m.confidence:.3f} tau={m.tau:.2f} {m.confidence_gate.value} {how}"


def _clinician(record: RunRecord, entity: str) -> bool:
    return any(e.name == entity and e.source == EntitySource.CLINICIAN for e in record.entities.final)


def build_seg(record: RunRecord, src: SourceInstance, selection: MaskSelection, notes: list[str],
              scrub: Callable[[str], str] | None = None) -> hd.seg.Segmentation:
    """``scrub``: de-identification of the free text (entity names), applied before writing."""
    keep = scrub or (lambda text: text)
    if not selection.exported:
        raise ValueError("no mask to export")  # the bundle checks first and says why
    descriptions = []
    planes = []
    for item in selection.exported:
        m = item.mask
        desc = hd.seg.SegmentDescription(
            segment_number=item.segment_number,
            segment_label=short(keep(m.entity), 64, notes, f"segment label of mask {item.index + 1}"),
            segmented_property_category=CATEGORY,
            segmented_property_type=PROPERTY,
            # A box a clinician drew steered the segmenter; a text prompt is the models' alone.
            algorithm_type=(hd.seg.SegmentAlgorithmTypeValues.SEMIAUTOMATIC if _clinician(record, m.entity)
                            else hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC),
            algorithm_identification=algorithm(segmenter_info(record, m), m.backend, notes),
            tracking_uid=tracking_uid(record, item.index),
            tracking_id=short(keep(m.entity), 64),
        )
        desc.SegmentDescription = describe(item)
        descriptions.append(desc)
        planes.append(src.mask_on_instance(m.mask))
    pixels = np.stack(planes, axis=-1)[None]  # (1 frame, rows, cols, segments)
    seg = hd.seg.Segmentation(
        source_images=[src.dataset],
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MANUFACTURER,
        software_versions=__version__ or "unknown",
        device_serial_number="none",  # software: there is no device serial
        content_label="CARE_MASKS",
        content_description=short(f"CARE run {record.run_id}", 64),
        series_description=SEG_SERIES_DESCRIPTION,
    )
    seg.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: entity names are any language
    return seg
