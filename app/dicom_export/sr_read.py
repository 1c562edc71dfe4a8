"""``read_care_sr``: a CARE structured report (as :mod:`.sr` writes it) back to a summary.

Reads the SR's own content tree with pydicom only (no highdicom parsing rules), so an SR fetched
back from a PACS reads the same; what it cannot find is empty, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from . import sr_codes as C
from .errors import ExportError

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
_TRACKING_IDENTIFIER = ("112039", "DCM")
_MEASUREMENT_GROUP = ("125007", "DCM")
_YES = ("373066001", "SCT")
_FINDING = ("121071", "DCM")
_VOLUME = ("118565006", "SCT")
_DIAMETER = ("81827009", "SCT")


@dataclass(frozen=True)
class CareSrEntity:
    name: str
    confidence: float | None  # C of the mask
    tau: float | None
    accepted: bool  # after the clinician's overrides
    by_clinician: bool  # ``accepted`` is a clinician's override of the gate
    discarded: bool
    segment_number: int | None  # the referenced SEG segment (None: not in a SEG of the export)
    seg_sop_instance_uid: str = ""


@dataclass(frozen=True)
class CareSrEvidenceSlice:
    number: int  # 1-based, as the viewer's Im: k/n
    sop_instance_uid: str  # the slice's source instance
    area_px: float | None
    confidence: float | None
    counted: bool  # the aggregation counted its answer
    gave_answer: bool


@dataclass(frozen=True)
class CareSrLesion3D:
    """The 3-D lesion group; a figure the file had no spacing for is None (never invented mm)."""

    volume_ml: float | None
    voxels: float | None
    extent_slices: float | None
    extent_mm: float | None
    largest_diameter_mm: float | None
    largest_diameter_px: float | None
    seed: float | None  # 1-based slice numbers
    first: float | None
    last: float | None
    c_min: float | None
    c_median: float | None
    c_max: float | None
    units: dict[str, str]  # concept value -> UCUM unit code, as written
    sop_instance_uids: tuple[str, ...] = ()  # the instances of the slices it covers


@dataclass(frozen=True)
class CareSrStudy:
    scope: str
    rule: str
    result: str
    slice_answers: tuple[str, ...]  # "slice N: answer"
    stops: str
    slices: tuple[CareSrEvidenceSlice, ...] = ()
    lesion: CareSrLesion3D | None = None


@dataclass(frozen=True)
class CareSrSummary:
    run_id: str
    question: str
    answer: str
    mode: str  # as the report labels it ("CARE-Flow", "CARE-Coord")
    created: str  # ISO time the run started; "" in a de-identified SR
    evidence: str = ""
    decision: str = ""
    entities: tuple[CareSrEntity, ...] = ()
    models: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()
    sop_instance_uid: str = ""
    study_uid: str = ""
    study: CareSrStudy | None = None  # study-scope runs only


def _code(item: Dataset) -> tuple[str, str]:
    seq = item.get("ConceptNameCodeSequence") or []
    return (str(seq[0].CodeValue), str(seq[0].CodingSchemeDesignator)) if seq else ("", "")


def _children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence") or [])


def _entity(group: Dataset) -> CareSrEntity | None:
    name, conf, tau, segment, seg_uid = "", None, None, None, ""
    flags = {C.ACCEPTED.value: False, C.CLINICIAN_ACCEPTED.value: False, C.DISCARDED.value: False}
    found = False
    for item in _children(group):
        code, vt = _code(item), str(item.get("ValueType", ""))
        if code == _TRACKING_IDENTIFIER and vt == "TEXT":
            name = str(item.TextValue)
        elif vt == "NUM" and code[1] == C.SCHEME:
            value = float(item.MeasuredValueSequence[0].NumericValue) if item.get("MeasuredValueSequence") else None
            if code[0] == C.CONFIDENCE.value:
                conf, found = value, True
            elif code[0] == C.TAU.value:
                tau = value
        elif vt == "CODE" and code[1] == C.SCHEME and code[0] in flags:
            flags[code[0]] = _code_value(item) == _YES
        elif vt == "IMAGE" and item.get("ReferencedSOPSequence"):
            ref = item.ReferencedSOPSequence[0]
            if "ReferencedSegmentNumber" in ref:
                segment, seg_uid = int(ref.ReferencedSegmentNumber), str(ref.ReferencedSOPInstanceUID)
    if not found:
        return None
    return CareSrEntity(name, conf, tau, flags[C.ACCEPTED.value], flags[C.CLINICIAN_ACCEPTED.value],
                        flags[C.DISCARDED.value], segment, seg_uid)


def _finding(group: Dataset) -> tuple[str, str]:
    item = next((i for i in _children(group) if _code(i) == _FINDING and str(i.get("ValueType", "")) == "CODE"),
                None)
    return _code_value(item) if item is not None else ("", "")


def _nums(group: Dataset) -> tuple[dict[str, float], dict[str, str]]:
    values, units = {}, {}
    for item in _children(group):
        if str(item.get("ValueType", "")) == "NUM" and item.get("MeasuredValueSequence"):
            mv = item.MeasuredValueSequence[0]
            key = _code(item)[0]
            values[key] = float(mv.NumericValue)
            unit = mv.get("MeasurementUnitsCodeSequence") or []
            units[key] = str(unit[0].CodeValue) if unit else ""
    return values, units


def _images(group: Dataset) -> tuple[str, ...]:
    return tuple(str(i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in _children(group)
                 if str(i.get("ValueType", "")) == "IMAGE" and i.get("ReferencedSOPSequence"))


def _study(ds: Dataset, texts: dict[str, list[str]]) -> CareSrStudy | None:
    slices, lesion = [], None
    for g in _groups(ds):
        finding = _finding(g)
        if finding == (C.EVIDENCE_SLICE.value, C.SCHEME):
            v, _ = _nums(g)
            flags = {_code(i)[0]: _code_value(i) == _YES for i in _children(g) if str(i.get("ValueType", "")) == "CODE"}
            images = _images(g)
            slices.append(CareSrEvidenceSlice(int(v.get(C.SLICE_NUMBER.value, 0)), images[0] if images else "",
                                              v.get(C.SLICE_AREA.value), v.get(C.SLICE_C.value),
                                              flags.get(C.COUNTED.value, False), flags.get(C.GAVE_ANSWER.value, False)))
        elif finding == (C.LESION_3D.value, C.SCHEME):
            v, units = _nums(g)
            lesion = CareSrLesion3D(
                v.get(_VOLUME[0]), v.get(C.VOXELS.value), v.get(C.EXTENT_SLICES.value), v.get(C.EXTENT_MM.value),
                v.get(_DIAMETER[0]), v.get(C.DIAMETER_PX.value), v.get(C.SEED_SLICE.value),
                v.get(C.FIRST_SLICE.value), v.get(C.LAST_SLICE.value), v.get(C.SLICE_C_MIN.value),
                v.get(C.SLICE_C_MEDIAN.value), v.get(C.SLICE_C_MAX.value), units, _images(g))
    scope = (texts.get(C.STUDY_SCOPE.value) or [""])[0]
    if not scope and not slices and lesion is None:
        return None
    return CareSrStudy(scope, (texts.get(C.STUDY_RULE.value) or [""])[0], (texts.get(C.STUDY_RESULT.value) or [""])[0],
                       tuple(texts.get(C.STUDY_SLICE_ANSWER.value, [])), (texts.get(C.LESION_STOPS.value) or [""])[0],
                       tuple(slices), lesion)


def _code_value(item: Dataset) -> tuple[str, str]:
    seq = item.get("ConceptCodeSequence") or []
    return (str(seq[0].CodeValue), str(seq[0].CodingSchemeDesignator)) if seq else ("", "")


def _groups(item: Dataset):
    for child in _children(item):
        if _code(child) == _MEASUREMENT_GROUP:
            yield child
        elif str(child.get("ValueType", "")) == "CONTAINER":
            yield from _groups(child)


def read_care_sr(ds: Dataset) -> CareSrSummary:
    """Parse an SR written by CARE Viewer's export.

    Raises:
        ExportError: not a Comprehensive 3D SR, or not one CARE wrote (no CARE run id).
    """
    if str(ds.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR:
        raise ExportError(f"SOP class {ds.get('SOPClassUID', '?')} is not a Comprehensive 3D SR")
    texts: dict[str, list[str]] = {}
    for child in _children(ds):
        if _code(child) == (C.QUALITATIVE_EVALUATIONS.value, C.QUALITATIVE_EVALUATIONS.scheme_designator):
            for item in _children(child):
                code = _code(item)
                if code[1] == C.SCHEME and str(item.get("ValueType", "")) == "TEXT":
                    texts.setdefault(code[0], []).append(str(item.TextValue))
    run_id = (texts.get(C.RUN_ID.value) or [""])[0]
    if not run_id:
        raise ExportError(f"SR {ds.get('SOPInstanceUID', '?')} is not a CARE structured report (no CARE run id)")

    def one(concept) -> str:
        return (texts.get(concept.value) or [""])[0]

    entities = tuple(e for g in _groups(ds) if (e := _entity(g)) is not None)
    return CareSrSummary(
        run_id=run_id, question=one(C.QUESTION), answer=one(C.ANSWER), mode=one(C.MODE), created=one(C.CREATED),
        evidence=one(C.EVIDENCE), decision=one(C.DECISION), entities=entities,
        models=tuple(texts.get(C.MODEL.value, [])), overrides=tuple(texts.get(C.OVERRIDE.value, [])),
        left_out=tuple(texts.get(C.LEFT_OUT.value, [])), sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")), study=_study(ds, texts),
    )
