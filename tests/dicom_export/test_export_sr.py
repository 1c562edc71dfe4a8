"""The TID 1500 SR: what it says about the run, read back with read_care_sr, and the
clinician's overrides (from the audit trail) in both the SR and the SEG."""
from __future__ import annotations

import json

import highdicom as hd
import pydicom
import pytest

from app.audit.store import AuditStore, persist
from app.dicom_export import CareSrSummary, ExportError, ExportKind, build_run_objects, read_care_sr
from app.dicom_export.bundle import write_bundle
from app.dicom_export.text import clean
from app.pipeline.run_io import read_run

pytestmark = pytest.mark.slow


def test_sr_round_trip(ct_run, tmp_path):
    bundle = build_run_objects(ct_run.folder)
    assert [bundle.kind_of(ds) for ds in bundle.datasets] == [ExportKind.SEG, ExportKind.SR, ExportKind.PDF]
    seg_path, sr_path, _ = write_bundle(bundle, tmp_path)
    sr = pydicom.dcmread(sr_path)  # from the file, as a PACS would hand it back
    summary = read_care_sr(sr)
    r = ct_run.record
    assert isinstance(summary, CareSrSummary)
    assert (summary.run_id, summary.question, summary.created) == (r.run_id, r.question, r.created)
    assert summary.answer == clean(r.final_answer) and summary.answer  # the tiny model's text, control chars aside
    assert summary.mode == "CARE-Flow" and r.mode == "flow"
    assert summary.decision == "none (CARE-Flow: no coordinator)"
    winners = [v.evidence.value for v in r.vote.votes if v.normalized == r.vote.winner]
    assert summary.evidence.startswith(", ".join(winners) + " (CARE-Flow majority vote")
    (entity,) = summary.entities
    m = r.masks[0]
    assert entity.name == m.entity and entity.confidence == pytest.approx(m.confidence, abs=1e-9)
    assert entity.tau == pytest.approx(m.tau) and entity.accepted and not entity.discarded
    # The reference resolves to the SEG's segment of that entity.
    seg = hd.seg.segread(seg_path)
    assert entity.seg_sop_instance_uid == seg.SOPInstanceUID
    assert seg.get_segment_description(entity.segment_number).segment_label == m.entity
    sha = r.models["box_segmenter"].weights_sha256
    assert any(line.startswith("box_segmenter: litemedsam") and sha in line for line in summary.models)
    # The SR is in the source study, a new series, with the SEG and the source image as evidence.
    source = pydicom.dcmread(r.input.source_path, stop_before_pixels=True)
    assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.SeriesInstanceUID not in (
        source.SeriesInstanceUID, seg.SeriesInstanceUID)
    evidence = {ref.ReferencedSOPInstanceUID for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for ref in series.ReferencedSOPSequence}
    assert evidence == {source.SOPInstanceUID, seg.SOPInstanceUID}
    assert sr.CompletionFlag == "COMPLETE" and sr.VerificationFlag == "UNVERIFIED"


def test_read_care_sr_refuses_other_objects(ct_run):
    bundle = build_run_objects(ct_run.folder, {ExportKind.SEG, ExportKind.SR})
    with pytest.raises(ExportError, match="is not a Comprehensive 3D SR"):
        read_care_sr(bundle.datasets[0])
    sr = bundle.datasets[1]
    sr.ContentSequence = [item for item in sr.ContentSequence if item.ValueType != "CONTAINER"]
    with pytest.raises(ExportError, match="is not a CARE structured report"):
        read_care_sr(sr)


def _persist_with(folder, overrides):
    record = read_run(folder)
    with AuditStore() as store:
        persist(record, store=store)
        for kind, detail in overrides:
            store.append_override(record.run_id, kind, detail, who="dr.test")
    return record


def test_clinician_discard_and_reject_leave_the_mask_out(ct_run, copy_run):
    folder = copy_run(ct_run)
    _persist_with(folder, [("mask_discard", {"target": "masks[0]", "old": "accepted", "new": "discarded",
                                             "note": "clinician region 1 (C=0.8)"})])
    bundle = build_run_objects(folder)
    assert [bundle.kind_of(ds) for ds in bundle.datasets] == [ExportKind.SR, ExportKind.PDF]
    assert any("clinician region 1" in w and "discarded by dr.test" in w for w in bundle.warnings)
    summary = read_care_sr(bundle.datasets[0])
    (entity,) = summary.entities
    assert entity.discarded and entity.segment_number is None
    assert any("you discarded" in o for o in summary.overrides)
    assert any("discarded by dr.test" in line for line in summary.left_out)


def test_restore_after_discard_exports_again(ct_run, copy_run):
    folder = copy_run(ct_run)
    _persist_with(folder, [("mask_discard", {"target": "masks[0]"}), ("mask_restore", {"target": "masks[0]"})])
    bundle = build_run_objects(folder, {ExportKind.SEG})
    assert bundle.datasets[0].SegmentSequence[0].SegmentLabel == "clinician region 1"


def test_clinician_accepts_a_mask_below_tau(ct_run, copy_run):
    """A copy of the run whose gate said no (accepted false in run.json): a clinician's
    mask_accept in the audit trail puts it in the SEG, said so in its description and the SR."""
    folder = copy_run(ct_run)
    data = json.loads((folder / "run.json").read_text())
    data["masks"][0]["accepted"] = False
    (folder / "run.json").write_text(json.dumps(data))
    _persist_with(folder, [("mask_accept", {"target": "masks[0]", "old": "below tau", "new": "accepted"}),
                           ("note", {"note": "looks like the tumour"})])
    bundle = build_run_objects(folder, {ExportKind.SEG, ExportKind.SR})
    seg, sr = bundle.datasets
    assert seg.SegmentSequence[0].SegmentDescription.endswith("accepted by a clinician below tau")
    summary = read_care_sr(sr)
    (entity,) = summary.entities
    assert entity.accepted and entity.by_clinician and entity.segment_number == 1
    assert any(o.endswith("you noted: looks like the tumour") for o in summary.overrides)


def test_clinician_reject_of_an_accepted_mask(ct_run, copy_run):
    folder = copy_run(ct_run)
    _persist_with(folder, [("mask_reject", {"target": "masks[0]"})])
    with pytest.raises(ExportError, match="rejected by dr.test"):
        build_run_objects(folder, {ExportKind.SEG})
    (entity,) = read_care_sr(build_run_objects(folder, {ExportKind.SR}).datasets[0]).entities
    assert not entity.accepted and entity.by_clinician


def test_a_box_drawn_after_the_run_is_named_not_exported(ct_run, copy_run):
    """The audit trail keeps a drawn box's numbers, not its mask: said, never invented."""
    folder = copy_run(ct_run)
    _persist_with(folder, [("box_added", {"target": "clinician region 2", "old": "", "new": [10, 10, 40, 40],
                                          "note": "litemedsam mask on slice 34: C=0.910 (accepted), 300 px"})])
    bundle = build_run_objects(folder)
    line = ("the box drawn after the run for 'clinician region 2' is not exported: the audit trail keeps its box "
            "and confidence, not its mask pixels")
    assert f"not exported: {line}" in bundle.warnings
    assert [s.SegmentLabel for s in bundle.datasets[0].SegmentSequence] == ["clinician region 1"]
    summary = read_care_sr(bundle.datasets[1])
    assert line in summary.left_out and any("you drew a box" in o for o in summary.overrides)
