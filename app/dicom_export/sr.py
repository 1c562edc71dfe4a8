"""The run as a TID 1500 Measurement Report in a Comprehensive 3D SR (highdicom).

One measurement group per mask of the run: its tracking identifier is the entity, its
measurements the mask confidence C and tau, its verdict after the clinician's overrides
(accepted, by a clinician, discarded) and, for a mask in the SEG of the same export, a
reference to its segment (TID 1411, which references a segment by number); the others an
image-level group (TID 1501) on the source image. A "Qualitative Evaluations" container (TID 1500 row 12) holds
the run as text: run id, question, answer, mode, when it ran, the evidence the answer rests
on, the coordinator decision, each model's provenance, the clinician overrides and the masks
not exported. :mod:`.sr_read` parses this back.
"""
from __future__ import annotations

from typing import Callable

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from app import __version__
from app.audit.present.build import mode_label
from app.audit.present.overrides import override_sentence
from app.pipeline.record import RunRecord
from app.pipeline.vocab import DecisionSource, Mode

from . import sr_codes as C
from .provenance import NOT_RECORDED, model_lines, segmenter_info
from .selection import MaskSelection
from .seg import PROPERTY, tracking_uid
from .source import RunSource, SourceInstance
from .sr_study import study_groups, study_slices, study_texts
from .text import clean, short

SR_SERIES_NUMBER = 9702
MANUFACTURER = "CARE Viewer"


def evidence_chosen(record: RunRecord) -> str:
    """The evidence type(s) the final answer rests on, and how it was decided."""
    d = record.coordinator_decision
    if record.mode == Mode.COORD and d is not None and d.source == DecisionSource.REVIEW and d.rests_on:
        types = []
        for cid in d.rests_on:
            i = int(cid[1:]) - 1 if cid[1:].isdigit() else -1
            if 0 <= i < len(record.answers):
                types.append(record.answers[i].evidence.value)
        found = ", ".join(dict.fromkeys(types)) or "none recorded"
        return f"{found} (CARE-Coord review, candidates {', '.join(d.rests_on)})"
    v = record.vote
    if v is None or not v.winner:
        return "none (no vote winner)"
    won = [x.evidence.value for x in v.votes if x.same_input_as is None and x.normalized == v.winner]
    passes = v.independent_passes or len(v.votes)
    return f"{', '.join(won)} (CARE-Flow majority vote, {len(won)} of {passes} passes)"


def decision_text(record: RunRecord) -> str:
    d = record.coordinator_decision
    if record.mode != Mode.COORD:
        return "none (CARE-Flow: no coordinator)"
    if d is None:
        return "none recorded"
    if d.source == DecisionSource.VOTE:
        return "no usable coordinator decision; the CARE-Flow vote answer stands" + (
            f" ({d.failure})" if d.failure else "")
    verb = "changed" if d.changed_vote else "kept"
    rounds = f"{d.extra_rounds} extra round{'' if d.extra_rounds == 1 else 's'}"
    text = f"from {d.source.value}: candidate {d.candidate or '-'}, {verb} the vote answer {d.vote_answer!r}, {rounds}"
    if d.proposed_answer:
        text += f"; a different answer was proposed and not applied: {d.proposed_answer!r}"
    return text


def _text(concept: hd.sr.CodedConcept, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=concept, value=value or "-", relationship_type="CONTAINS")


def _yes_no(flag: bool) -> hd.sr.CodedConcept:
    return codes.SCT.Yes if flag else codes.SCT.No


def _algorithm(record: RunRecord, m) -> hd.sr.AlgorithmIdentification:
    info = segmenter_info(record, m)
    return hd.sr.AlgorithmIdentification(
        name=short(info.repo_id if info and info.repo_id else m.backend, 64),
        version=short(info.revision if info and info.revision else NOT_RECORDED, 64),
        parameters=[f"weights_sha256={info.weights_sha256 if info and info.weights_sha256 else NOT_RECORDED}"])


def _groups(record: RunRecord, src: SourceInstance, selection: MaskSelection, seg: Dataset | None,
            keep: Callable[[str], str], notes: list[str], study: dict[int, Dataset]) -> list:
    """One group per mask of the run: its C, tau and verdict; the exported ones reference their
    SEG segment when the SEG is in the export (TID 1411), the others the source image (TID 1501)."""
    source_image = [hd.sr.SourceImageForMeasurementGroup.from_source_image(src.dataset)]
    groups: list = []
    for v in selection.verdicts:
        m = v.mask
        item = selection.exported_as(v.index)
        uid = tracking_uid(record, v.index)
        tracking = hd.sr.TrackingIdentifier(uid=uid, identifier=clean(keep(m.entity), notes, "entity name") or "-")
        measurements = [
            hd.sr.Measurement(name=C.CONFIDENCE, value=float(m.confidence), unit=codes.UCUM.NoUnits),
            hd.sr.Measurement(name=C.TAU, value=float(m.tau), unit=codes.UCUM.NoUnits),
        ]
        evaluations = [hd.sr.QualitativeEvaluation(C.ACCEPTED, _yes_no(v.accepted)),
                       hd.sr.QualitativeEvaluation(C.CLINICIAN_ACCEPTED, _yes_no(v.by_clinician)),
                       hd.sr.QualitativeEvaluation(C.DISCARDED, _yes_no(v.discarded))]
        common = dict(tracking_identifier=tracking, finding_type=PROPERTY, algorithm_id=_algorithm(record, m),
                      measurements=measurements, qualitative_evaluations=evaluations)
        if seg is not None and item is not None:
            # TID 1411 with a Referenced Segment (segment number, no frame number): TID 1410's
            # Referenced Segmentation Frame would carry both, which the image reference macro
            # forbids (dciodvfy: "shall not be present when ReferencedFrameNumber is present").
            ref = hd.sr.ReferencedSegment(
                sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                segment_number=item.segment_number,
                source_images=[hd.sr.SourceImageForSegmentation(src.dataset.SOPClassUID,
                                                                 src.dataset.SOPInstanceUID)])
            groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(referenced_segment=ref, **common))
        else:
            groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(source_images=source_image, **common))
    groups += study_groups(record, study)
    if not groups:  # TID 1500 needs one group: the run itself, on its source image
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid(record, -1), identifier="no masks"),
            finding_type=C.RUN_GROUP, source_images=source_image))
    return groups


def _run_items(run: RunSource, selection: MaskSelection, deidentify: bool, keep: Callable[[str], str],
               typed: Callable[[str], str], notes: list[str]) -> list[hd.sr.TextContentItem]:
    r = run.record
    items = [_text(C.RUN_ID, r.run_id), _text(C.QUESTION, clean(typed(r.question), notes, "question")),
             _text(C.ANSWER, clean(keep(r.final_answer), notes, "answer")), _text(C.MODE, mode_label(r.mode))]
    if not deidentify:  # a date: the Basic Profile removes it
        items.append(_text(C.CREATED, r.created))
    items.append(_text(C.EVIDENCE, evidence_chosen(r)))
    items.append(_text(C.DECISION, clean(keep(decision_text(r)), notes, "coordinator decision")))
    items += [_text(C.MODEL, line) for line in model_lines(r)]
    if r.weights_disclosure:
        items.append(_text(C.WEIGHTS, r.weights_disclosure))
    for o in [*r.overrides, *run.overrides]:
        when = "" if deidentify else f"{o.time}: "
        items.append(_text(C.OVERRIDE, clean(typed(when + override_sentence(o)), notes, "override")))
    items += [_text(C.LEFT_OUT, clean(keep(line), notes, "left-out mask")) for line in selection.left_out]
    items += study_texts(r, lambda t: clean(keep(t), notes, "study answer"), _text)
    return items


def build_sr(run: RunSource, src: SourceInstance, selection: MaskSelection, seg: Dataset | None, notes: list[str],
             scrub=None) -> hd.sr.Comprehensive3DSR:
    """``scrub``: the report's Scrubber when de-identifying (free text loses the identifiers)."""
    record = run.record
    deidentify = scrub is not None
    keep: Callable[[str], str] = scrub if scrub is not None else (lambda t: t)
    typed: Callable[[str], str] = scrub.typed if scrub is not None else (lambda t: t)
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["care-viewer", record.profile or "-"]), name=MANUFACTURER,
            manufacturer_name=MANUFACTURER, model_name=short(f"profile {record.profile or '-'}", 64)))
    study = study_slices(record, src)  # slice index -> its instance's header (study-scope runs)
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=_groups(record, src, selection, seg, keep, notes, study),
        title=codes.cid7021.ImagingMeasurementReport,
    )
    container = hd.sr.ContainerContentItem(name=C.QUALITATIVE_EVALUATIONS, relationship_type="CONTAINS")
    container.ContentSequence = _run_items(run, selection, deidentify, keep, typed, notes)
    report[0].ContentSequence.append(container)
    evidence = [src.dataset] + [ds for ds in study.values() if ds.SOPInstanceUID != src.dataset.SOPInstanceUID]
    evidence += [seg] if seg is not None else []
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=generate_uid(), series_number=SR_SERIES_NUMBER,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
        series_description="CARE structured report", software_versions=__version__ or "unknown",
    )
    sr.CodingSchemeIdentificationSequence = [C.scheme_identification()]
    sr.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: questions and answers are any language
    return sr
