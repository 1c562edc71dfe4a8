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
        study_uid=str(ds.get("StudyInstanceUID", "")),
    )
