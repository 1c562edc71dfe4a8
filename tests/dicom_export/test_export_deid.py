"""``--deidentify``: the PS3.15 Basic Profile on every object, one UID map per export."""
from __future__ import annotations

import io

import pydicom
import pytest

from app.dicom_export import ExportKind, build_run_objects, export_run, read_care_sr
from tests.dicom_export.conftest import IDENTIFIERS

pytestmark = pytest.mark.slow

# Every identifier of the identified CT copy (and the study date the question repeats).
SECRETS = [*IDENTIFIERS.values(), "LUNG1", "RESEARCH", "20200101", "2020-01-01", "private note"]


def _pdf_text(ds) -> str:
    from pypdf import PdfReader

    data = bytes(ds.EncapsulatedDocument)[: int(ds.EncapsulatedDocumentLength)]
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def _source_uids(ct_run) -> list[str]:
    src = pydicom.dcmread(ct_run.record.input.source_path, stop_before_pixels=True)
    return [src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID, src.FrameOfReferenceUID]


def _all_uids(ds) -> set[str]:
    out = set()
    for elem in ds.iterall():
        if elem.VR == "UI" and elem.value:
            out |= set(elem.value) if elem.VM > 1 else {str(elem.value)}
    return out


@pytest.fixture(scope="module")
def exports(ct_run, tmp_path_factory):
    """(identified files, de-identified files) of the same run."""
    root = tmp_path_factory.mktemp("exports")
    return export_run(ct_run.folder, root / "plain"), export_run(ct_run.folder, root / "deid", deidentify=True)


def test_the_identified_export_carries_the_identifiers(exports, ct_run):
    """The control: without --deidentify the identifiers are there (so the test below can fail)."""
    plain, _ = exports
    seg, sr, pdf = (pydicom.dcmread(p) for p in plain)
    assert seg.AccessionNumber == "ACC55501" and str(seg.PatientName) == "LUNG1^RESEARCH"
    assert read_care_sr(sr).question.startswith("Patient LUNG1^RESEARCH, scanned 2020-01-01")
    assert "LUNG1" in _pdf_text(pdf)
    assert set(_source_uids(ct_run)[:3]) <= _all_uids(seg)


def test_no_identifier_survives(exports, ct_run):
    _, deid = exports
    source_uids = _source_uids(ct_run)
    for path in deid:
        raw = path.read_bytes()
        ds = pydicom.dcmread(path)
        text = _pdf_text(ds) if "EncapsulatedDocument" in ds else ""
        for secret in SECRETS:
            assert secret.encode() not in raw, f"{path.name} holds {secret!r}"
            assert secret.lower() not in text.lower(), f"the PDF in {path.name} shows {secret!r}"
        for uid in source_uids:
            assert uid.encode() not in raw, f"{path.name} holds the source UID {uid}"
        assert not any(elem.tag.is_private for elem in ds.iterall())
        assert ds.PatientIdentityRemoved == "YES"
        # The PDF's report keeps the run's own times: only the SEG and SR claim dates removed.
        assert ds.get("LongitudinalTemporalInformationModified") == (None if text else "REMOVED")
        assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100", "113104", "113105"]
        assert ds.PatientID.startswith("DEID-") and ds.StudyDate == "19000101"
    summary = read_care_sr(pydicom.dcmread(deid[1]))
    assert summary.question == "Patient [removed], scanned [removed]: is there a mass in the right lung?"
    assert summary.created == ""  # a date: removed
    assert summary.run_id == ct_run.record.run_id


def test_uid_map_keeps_the_references(exports):
    _, deid = exports
    seg, sr, pdf = (pydicom.dcmread(p) for p in deid)
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == pdf.StudyInstanceUID
    assert seg.PatientID == sr.PatientID == pdf.PatientID  # one pseudonym per export
    source_sop = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID
    frame_src = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert frame_src.ReferencedSOPInstanceUID == source_sop
    assert pdf.SourceInstanceSequence[0].ReferencedSOPInstanceUID == source_sop
    (entity,) = read_care_sr(sr).entities
    assert entity.seg_sop_instance_uid == seg.SOPInstanceUID and entity.segment_number == 1
    evidence = {ref.ReferencedSOPInstanceUID for study in sr.CurrentRequestedProcedureEvidenceSequence
                for series in study.ReferencedSeriesSequence for ref in series.ReferencedSOPSequence}
    assert evidence == {source_sop, seg.SOPInstanceUID}
    # The segment and the SR group of the mask share one (remapped) tracking UID.
    tracking = {str(e.value) for e in sr.iterall() if e.keyword == "UID"}
    assert seg.SegmentSequence[0].TrackingUID in tracking
    for ds in (seg, sr, pdf):
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_two_exports_are_unlinkable(ct_run):
    a = build_run_objects(ct_run.folder, {ExportKind.PDF}, deidentify=True).datasets[0]
    b = build_run_objects(ct_run.folder, {ExportKind.PDF}, deidentify=True).datasets[0]
    assert a.StudyInstanceUID != b.StudyInstanceUID and a.PatientID != b.PatientID
