"""A study-scope run's ``study`` section in the TID 1500 SR.

- one TID 1501 measurement group for the 3-D lesion (the clinician-box route's propagated mask):
  its volume (``ml``), extent in slices and across them (``mm``), largest axial diameter (``mm``),
  the slices it covers and the per-slice confidence C (lowest, median, highest over the kept
  slices), with the source instance of every slice it covers as the group's source images. A
  figure the file has no spacing for is written in voxels / pixels, never as invented mm;
- one group per evidence slice: its number, cross-section area and C, whether the aggregation
  counted its answer and whether it gave the study's answer, on that slice's own instance;
- text items (in the Qualitative Evaluations container): the study scope, the aggregation rule,
  its result and each evidence slice's answer.

The slices' instances come from the series the run's slice was found in (``volume.source_files``
in the volume's slice order, the order ``study`` indices are in); a series that no longer has the
run's slice count is refused rather than referenced wrongly.
"""
from __future__ import annotations

from pathlib import Path
from statistics import median
from typing import Callable

import highdicom as hd
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app.pipeline.record import RunRecord
from app.pipeline.study_record import StudyScope

from . import sr_codes as C
from .errors import ExportError
from .provenance import NOT_RECORDED
from .source import SourceInstance

ML = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
MM = codes.UCUM.Millimeter
ONE = codes.UCUM.NoUnits
PIXELS = hd.sr.CodedConcept("{pixels}", "UCUM", "pixels")
SLICES = hd.sr.CodedConcept("{slices}", "UCUM", "slices")
VOXELS = hd.sr.CodedConcept("{voxels}", "UCUM", "voxels")


def study_slices(record: RunRecord, src: SourceInstance) -> dict[int, Dataset]:
    """Slice index (volume order) -> the header of its source instance, for every slice the
    study section names (evidence slices and the 3-D lesion's slices).

    Raises:
        ExportError: the series is gone, changed size, or its run slice is another instance.
    """
    from app.study.loader import load

    study = record.study
    if study is None:
        return {}
    wanted = set(study.evidence_slices) | {s.index for s in study.slices}
    if study.mask3d is not None:
        wanted |= set(range(study.mask3d.first, study.mask3d.last + 1))
    rid, inp = record.run_id, record.input
    files: list[str] | None = None
    if src.frame.volume.num_slices == study.num_slices and len(src.frame.volume.source_files) == study.num_slices:
        files = list(src.frame.volume.source_files)
    else:
        for v in load([str(src.path.parent)]).volumes:
            if v.series_uid == inp.series_uid and v.num_slices == study.num_slices \
                    and len(v.source_files) == v.num_slices:
                files = list(v.source_files)
                break
    if files is None:
        raise ExportError(f"run {rid}: the series of {src.path.name} no longer has the study's {study.num_slices} "
                          "slices, so its evidence slices cannot be referenced")
    if not 0 <= inp.slice_index < len(files) or Path(files[inp.slice_index]).resolve() != src.path.resolve():
        raise ExportError(f"run {rid}: the series' slice order no longer puts {src.path.name} at slice "
                          f"{inp.slice_index + 1}, so its evidence slices cannot be referenced")
    out: dict[int, Dataset] = {}
    for k in sorted(wanted):
        if not 0 <= k < len(files):
            raise ExportError(f"run {rid}: the study section names slice {k + 1} of a {len(files)}-slice series")
        try:
            out[k] = pydicom.dcmread(files[k], stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types for a damaged file
            raise ExportError(f"run {rid}: cannot re-read the source {files[k]} ({exc})") from exc
        if str(out[k].get("StudyInstanceUID", "")) != inp.study_uid:
            raise ExportError(f"run {rid}: the source {files[k]} belongs to another study than the run")
    return out


def _num(concept, value: float, unit) -> hd.sr.Measurement:
    return hd.sr.Measurement(name=concept, value=float(value), unit=unit)


def _sources(instances: dict[int, Dataset], ks) -> list[hd.sr.SourceImageForMeasurementGroup]:
    return [hd.sr.SourceImageForMeasurementGroup.from_source_image(instances[k]) for k in ks]


def _lesion_group(record: RunRecord, study: StudyScope, instances: dict[int, Dataset]):
    m = study.mask3d
    assert m is not None
    measurements = []
    if m.volume_ml is not None:
        measurements.append(_num(codes.SCT.Volume, m.volume_ml, ML))
    measurements.append(_num(C.VOXELS, m.voxels, VOXELS))
    measurements.append(_num(C.EXTENT_SLICES, m.extent_slices, SLICES))
    if m.extent_mm is not None:
        measurements.append(_num(C.EXTENT_MM, m.extent_mm, MM))
    if m.largest_diameter_mm is not None:
        measurements.append(_num(codes.SCT.Diameter, m.largest_diameter_mm, MM))
    measurements.append(_num(C.DIAMETER_PX, m.largest_diameter_px, PIXELS))
    measurements += [_num(C.SEED_SLICE, m.seed_slice + 1, ONE), _num(C.FIRST_SLICE, m.first + 1, ONE),
                     _num(C.LAST_SLICE, m.last + 1, ONE)]
    kept = [float(p["confidence"]) for p in m.per_slice if p.get("included")]
    if kept:
        measurements += [_num(C.SLICE_C_MIN, min(kept), ONE), _num(C.SLICE_C_MEDIAN, median(kept), ONE),
                         _num(C.SLICE_C_MAX, max(kept), ONE)]
    tracking = hd.sr.TrackingIdentifier(uid=generate_uid(entropy_srcs=["care-lesion-3d", record.run_id]),
                                        identifier="3-D lesion")
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, finding_type=C.LESION_3D, measurements=measurements,
        source_images=_sources(instances, range(m.first, m.last + 1)),
        algorithm_id=_algorithm(record, m.backend, m.rules))


def _algorithm(record: RunRecord, backend: str, rules: str) -> hd.sr.AlgorithmIdentification:
    """The propagating segmenter as the run recorded it (the box segmenter's provenance)."""
    info = next((i for i in record.models.values() if i.backend == backend), None)
    return hd.sr.AlgorithmIdentification(
        name=(info.repo_id if info and info.repo_id else backend)[:64] or "-",
        version=(info.revision if info and info.revision else NOT_RECORDED)[:64],
        parameters=[f"propagation_rules={rules or NOT_RECORDED}",
                    f"weights_sha256={info.weights_sha256 if info and info.weights_sha256 else NOT_RECORDED}"])


def _slice_groups(record: RunRecord, study: StudyScope, instances: dict[int, Dataset]) -> list:
    agg = study.aggregation
    counted = {v.index for v in agg.inputs} if agg else set()
    winners = set(agg.winner_slices) if agg else set()
    groups = []
    for s in study.slices:
        measurements = [_num(C.SLICE_NUMBER, s.number, ONE)]
        if s.area_px:
            measurements.append(_num(C.SLICE_AREA, s.area_px, PIXELS))
        if s.confidence is not None:
            measurements.append(_num(C.SLICE_C, s.confidence, ONE))
        tracking = hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=["care-evidence-slice", record.run_id, str(s.index)]),
            identifier=f"evidence slice {s.number}")
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, finding_type=C.EVIDENCE_SLICE, measurements=measurements,
            source_images=_sources(instances, [s.index]),
            qualitative_evaluations=[
                hd.sr.QualitativeEvaluation(C.COUNTED, codes.SCT.Yes if s.index in counted else codes.SCT.No),
                hd.sr.QualitativeEvaluation(C.GAVE_ANSWER, codes.SCT.Yes if s.index in winners else codes.SCT.No)]))
    return groups


def study_groups(record: RunRecord, instances: dict[int, Dataset]) -> list:
    study = record.study
    if study is None:
        return []
    groups = [_lesion_group(record, study, instances)] if study.mask3d is not None else []
    return groups + _slice_groups(record, study, instances)


def study_texts(record: RunRecord, keep: Callable[[str], str], text) -> list:
    """``text(concept, value)``: the SR's TEXT item maker; ``keep``: the de-identifying scrubber."""
    from app.audit.present.study import study_scope_text

    study = record.study
    if study is None:
        return []
    items = [text(C.STUDY_SCOPE, study_scope_text(study, record.input))]
    agg = study.aggregation
    if agg is not None:
        items.append(text(C.STUDY_RULE, agg.rule))
        result = f"{keep(agg.winner_raw) or '(no answer)'}; decided by {agg.decided_by.value}: {keep(agg.detail)}"
        items.append(text(C.STUDY_RESULT, result))
    for s in study.slices:
        answer = keep(" ".join(s.answer.split())) if s.answer.strip() else f"(not answered: {s.status})"
        items.append(text(C.STUDY_SLICE_ANSWER, f"slice {s.number}: {answer}"))
    if study.mask3d is not None and study.mask3d.stop_reasons:
        items.append(text(C.LESION_STOPS, ", ".join(study.mask3d.stop_reasons)))
    return items
