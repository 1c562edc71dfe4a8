"""The PACS round trip on the shared CT against a real Orthanc: retrieve the study (WADO-RS), it
loads as the same volume; ask (tiny models, a box on the tumour); `pacs store RUN` (STOW-RS, then
C-STORE) puts SEG + SR + PDF in the source study; fetched back from Orthanc they pass dciodvfy,
the SEG is the run's mask on the run's slice and the SR holds the question and answer."""
from __future__ import annotations

import io
import subprocess
from pathlib import Path

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest

from app.cli.main import main
from app.pacs.client import client_for
from app.pacs.models import QueryFilter
from app.pacs.nodes import parse_node_arg
from app.study.loader import load

DCIODVFY = Path("/usr/bin/dciodvfy")
SEG, SR, PDF = "1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture(scope="module")
def retrieved_ct(orthanc, ct_volume, tmp_path_factory):
    out = tmp_path_factory.mktemp("retrieved")
    seen = []
    result = client_for(parse_node_arg(orthanc.server.dicomweb_url, None)).retrieve(
        orthanc.ct_study, out_dir=out, progress=seen.append)
    assert result.complete and len(result.written) == result.total == 48, result.error
    assert [p.done for p in seen] == list(range(1, 49))
    assert not list(out.rglob(".part-*"))  # no temporary file left behind
    return out / orthanc.ct_study


@pytest.fixture(scope="module")
def ct_run(retrieved_ct, ct_tumour, tiny_pipeline_factory, tmp_path_factory):
    from app.pipeline.run_io import write_run

    (volume,) = load([retrieved_ct]).volumes
    record = tiny_pipeline_factory(24).run(volume, ct_tumour.slice_index, "Is there a mass in the right lung?",
                                           boxes=[ct_tumour.box])
    assert record.status == "completed", record.errors
    assert [m.accepted for m in record.masks] == [True]
    folder = tmp_path_factory.mktemp("ct-run") / "run"
    write_run(record, folder)
    return folder, record


def test_retrieved_study_loads_as_the_same_volume(retrieved_ct, ct_volume):
    (got,) = load([retrieved_ct]).volumes
    np.testing.assert_array_equal(got.array, ct_volume.array)
    np.testing.assert_allclose(got.spacing, ct_volume.spacing)
    np.testing.assert_allclose(got.origin, ct_volume.origin)
    np.testing.assert_allclose(got.direction, ct_volume.direction)
    assert (got.study_uid, got.series_uid) == (ct_volume.study_uid, ct_volume.series_uid)


def _stored_objects(orthanc) -> dict[str, pydicom.Dataset]:
    """SOP class -> the object CARE stored in the CT study, read back from Orthanc's own file."""
    client = client_for(parse_node_arg(None, orthanc.server.dimse_arg))
    (study,) = client.find_studies(QueryFilter(patient_id="LUNG1"))
    found = {}
    for series in client.find_series(study.study_uid):
        if series.modality == "CT":
            continue
        for ref in client.find_instances(study.study_uid, series.series_uid):
            ds = pydicom.dcmread(io.BytesIO(orthanc.server.instance_file(ref.sop_uid)))
            found[str(ds.SOPClassUID)] = ds
    return found


def _check(stored: dict[str, pydicom.Dataset], folder: Path, record, tmp_path: Path) -> None:
    assert set(stored) == {SEG, SR, PDF}
    source = pydicom.dcmread(record.input.source_path)
    for ds in stored.values():
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.SeriesInstanceUID != source.SeriesInstanceUID
        assert (ds.PatientID, ds.PatientName) == (source.PatientID, source.PatientName)
        if DCIODVFY.exists():
            path = tmp_path / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            out = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=120)
            errors = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("Error")]
            assert errors == [], (ds.SOPClassUID, errors)
    seg = hd.seg.Segmentation.from_dataset(stored[SEG])
    (ref,) = seg.get_source_image_uids()
    assert ref[2] == source.SOPInstanceUID  # the run's slice
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1])[0, ..., 0]
    mask = cv2.imread(str(folder / record.masks[0].png), cv2.IMREAD_GRAYSCALE) > 127
    assert mask.sum() > 100
    np.testing.assert_array_equal(pixels.astype(bool), mask)  # this CT's display frame is its array
    from app.dicom_export import read_care_sr

    summary = read_care_sr(stored[SR])
    assert summary.question == record.question and summary.run_id == record.run_id
    assert bytes(stored[PDF].EncapsulatedDocument).startswith(b"%PDF")


def test_store_run_over_both_protocols(orthanc, ct_run, tmp_path, capsys):
    folder, record = ct_run
    for node in (["--dicomweb", orthanc.server.dicomweb_url], ["--dimse", orthanc.server.dimse_arg]):
        try:
            assert main(["pacs", "store", str(folder), *node]) == 0, capsys.readouterr().err
            assert "stored 3 of 3 object(s)" in capsys.readouterr().out
            stored = _stored_objects(orthanc)
            _check(stored, folder, record, tmp_path)
        finally:
            for ds in _stored_objects(orthanc).values():  # the next protocol (and test) starts clean
                orthanc.server.delete_instance(str(ds.SOPInstanceUID))
    assert main(["pacs", "store", str(folder), "--seg", "--dimse", orthanc.server.dimse_arg]) == 0
    try:
        assert "stored 1 of 1 object(s)" in capsys.readouterr().out
        assert set(_stored_objects(orthanc)) == {SEG}
    finally:
        for ds in _stored_objects(orthanc).values():
            orthanc.server.delete_instance(str(ds.SOPInstanceUID))


def test_store_run_deidentified_with_its_source_slice(orthanc, ct_run, tmp_path, capsys):
    """`pacs store RUN --file SOURCE --deidentify`: one UID map for the call, so the SEG still
    references the (de-identified) slice it was drawn on; no patient identifier reaches Orthanc
    and nothing on disk changes."""
    folder, record = ct_run
    source_path = Path(record.input.source_path)
    source = pydicom.dcmread(source_path)
    on_disk = {p: p.read_bytes() for p in [source_path, *sorted(folder.rglob("*")) ] if p.is_file()}
    before = set(orthanc.server.instances())
    held: dict[str, pydicom.Dataset] = {}
    try:
        assert main(["pacs", "store", str(folder), "--file", str(source_path), "--deidentify",
                     "--dimse", orthanc.server.dimse_arg]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert "stored 4 of 4 object(s)" in out and "(de-identified" in out
        for uid in sorted(set(orthanc.server.instances()) - before):
            ds = pydicom.dcmread(io.BytesIO(orthanc.server.instance_file(uid)))
            held[str(ds.SOPClassUID)] = ds
    finally:
        for ds in held.values():
            orthanc.server.delete_study(str(ds.StudyInstanceUID))
    assert {p: p.read_bytes() for p in on_disk} == on_disk
    assert set(held) == {SEG, SR, PDF, str(source.SOPClassUID)}
    image = held[str(source.SOPClassUID)]
    for ds in held.values():
        assert ds.PatientIdentityRemoved == "YES"
        assert (ds.PatientID, str(ds.StudyInstanceUID)) == (image.PatientID, str(image.StudyInstanceUID))
        assert ds.StudyInstanceUID != source.StudyInstanceUID and ds.PatientID != source.PatientID
        texts = [str(e.value) for e in ds.iterall() if e.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "UI")]
        for ident in (str(source.PatientID), str(source.PatientName), str(source.SOPInstanceUID)):
            assert not any(ident in t for t in texts), ident
    assert image.SOPInstanceUID != source.SOPInstanceUID
    np.testing.assert_array_equal(image.pixel_array, source.pixel_array)
    seg = hd.seg.Segmentation.from_dataset(held[SEG])
    (ref,) = seg.get_source_image_uids()
    assert ref[2] == image.SOPInstanceUID  # the SEG references the slice as it now is on the node
    assert held[SEG].FrameOfReferenceUID == image.FrameOfReferenceUID
