"""Every object passes dciodvfy (dicom3tools) with no error; the Encapsulated PDF is the
run's evidence report."""
from __future__ import annotations

import io
import json

import pydicom
import pytest

from app.dicom_export import ExportKind, build_run_objects, export_run
from app.dicom_export.bundle import write_bundle
from tests.dicom_export.conftest import dciodvfy

pytestmark = pytest.mark.slow

# Our SR's local concepts (scheme 99CARE, declared in its CodingSchemeIdentificationSequence,
# the standard's way for private codes) are the one thing dciodvfy does not know.
KNOWN_WARNING = "Warning - Unrecognized defined term <99CARE> for value 1 of attribute <Coding Scheme Designator>"


def _check(path):
    errors, warnings = dciodvfy(path)
    assert not errors, f"{path.name}:\n" + "\n".join(errors)
    assert set(warnings) <= {KNOWN_WARNING}, f"{path.name}:\n" + "\n".join(warnings)


@pytest.mark.parametrize("deidentify", [False, True], ids=["identified", "deidentified"])
def test_every_object_passes_dciodvfy(ct_run, mr_run, tmp_path, deidentify):
    for run in (ct_run, mr_run):
        paths = export_run(run.folder, tmp_path / run.folder.parent.name, deidentify=deidentify)
        assert [p.name.rsplit("-", 1)[1] for p in paths] == ["seg.dcm", "sr.dcm", "pdf.dcm"]
        for p in paths:
            _check(p)


def test_sr_without_seg_and_without_masks_passes_dciodvfy(ct_run, copy_run, tmp_path):
    folder = copy_run(ct_run)
    (sr,) = export_run(folder, tmp_path / "sr-only", {ExportKind.SR})  # groups on the source image
    _check(sr)
    data = json.loads((folder / "run.json").read_text())
    data["masks"] = []
    (folder / "run.json").write_text(json.dumps(data))
    (sr,) = export_run(folder, tmp_path / "no-masks", {ExportKind.SR})
    _check(sr)


def test_the_check_catches_a_broken_object(ct_run, tmp_path):
    bundle = build_run_objects(ct_run.folder, {ExportKind.PDF})
    del bundle.datasets[0].SOPInstanceUID  # type 1
    (path,) = write_bundle(bundle, tmp_path)
    errors, _ = dciodvfy(path)
    assert errors


def test_encapsulated_pdf_is_the_evidence_report(ct_run):
    from pypdf import PdfReader

    ds = build_run_objects(ct_run.folder, {ExportKind.PDF}).datasets[0]
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1" and ds.Modality == "DOC"
    assert ds.MIMETypeOfEncapsulatedDocument == "application/pdf" and ds.BurnedInAnnotation == "YES"
    data = bytes(ds.EncapsulatedDocument)
    n = int(ds.EncapsulatedDocumentLength)
    assert len(data) in (n, n + 1) and data[:n].rstrip().endswith(b"%%EOF")
    reader = PdfReader(io.BytesIO(data[:n]))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert ct_run.record.run_id in text and "LUNG1" in text
    assert " ".join(ct_run.record.question.split()) in " ".join(text.split())
    source = pydicom.dcmread(ct_run.record.input.source_path, stop_before_pixels=True)
    assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == source.PatientID
    assert ds.SourceInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
