"""Retrieve from a real Orthanc (WADO-RS, C-GET, C-MOVE): the files open with the study loader as
the same volume (the CT over WADO-RS: test_roundtrip.py), resume skips what is there, cancel keeps what was written, a study deleted
mid-retrieve keeps the instances already retrieved and says so."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest

from app.pacs.client import client_for
from app.pacs.nodes import parse_node_arg
from app.study.loader import load
from tests.pacs.conftest import SMALL_N, SMALL_SERIES_UID

PROTOCOLS = ("dicomweb", "dimse-get", "dimse-move")


def _client(pacs, protocol: str):
    s = pacs.server
    if protocol == "dicomweb":
        return client_for(parse_node_arg(s.dicomweb_url, None))
    return client_for(parse_node_arg(None, s.dimse_arg, move_port=pacs.move_port if protocol == "dimse-move" else None))


def _same_volume(a, b) -> None:
    assert a.array.shape == b.array.shape
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.spacing, b.spacing)
    np.testing.assert_allclose(a.origin, b.origin)
    np.testing.assert_allclose(a.direction, b.direction)
    assert (a.study_uid, a.series_uid) == (b.study_uid, b.series_uid)


def test_c_get_retrieve_of_the_mr_loads_as_the_same_volume(orthanc, mr_dicom_dir, tmp_path):
    # (C-MOVE's files are checked pixel for pixel on the small study below.)
    result = _client(orthanc, "dimse-get").retrieve(orthanc.mr_study, out_dir=tmp_path)
    assert result.complete and len(result.written) == 25, result.error
    for path in result.written:  # named by the UIDs inside the file
        ds = pydicom.dcmread(path)
        assert path.relative_to(tmp_path).parts == (ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
    (original,) = load([mr_dicom_dir]).volumes
    (retrieved,) = load([tmp_path / orthanc.mr_study]).volumes
    _same_volume(retrieved, original)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cancel_keeps_what_was_written_and_the_next_run_resumes(orthanc, protocol, small_files, tmp_path):
    client = _client(orthanc, protocol)
    done = []

    def progress(p):
        done.append(p.current_sop_uid)

    first = client.retrieve(orthanc.small_study, SMALL_SERIES_UID, out_dir=tmp_path, progress=progress,
                            cancel=lambda: len(done) >= 2)
    assert first.cancelled and not first.complete and len(first.written) == 2 and first.total == SMALL_N
    assert all(p.exists() for p in first.written)
    # A damaged file (a crash elsewhere, a full disk) is not taken as already there.
    first.written[1].write_bytes(first.written[1].read_bytes()[:1000])
    second = client.retrieve(orthanc.small_study, out_dir=tmp_path)
    assert second.complete and second.already_present == 1 and len(second.written) == SMALL_N - 1
    files = sorted((tmp_path / orthanc.small_study / SMALL_SERIES_UID).glob("*.dcm"))
    assert len(files) == SMALL_N
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p).PixelData for p in small_files}
    for f in files:
        ds = pydicom.dcmread(f)
        assert ds.PixelData == originals[str(ds.SOPInstanceUID)]
    third = client.retrieve(orthanc.small_study, out_dir=tmp_path)
    assert third.complete and third.already_present == SMALL_N and third.written == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_study_deleted_mid_retrieve_keeps_what_was_retrieved(mutable_orthanc, protocol, tmp_path):
    client = _client(mutable_orthanc, protocol)

    def progress(p):
        if p.done == 2:  # the archive loses the study after two instances
            assert mutable_orthanc.server.delete_study(mutable_orthanc.small_study)

    result = client.retrieve(mutable_orthanc.small_study, out_dir=tmp_path, progress=progress)
    assert not result.complete and len(result.written) == 2 and len(result.failed) == SMALL_N - 2
    assert all(p.exists() for p in result.written)
    assert result.error.startswith(f"PACS node {client.node.label}: {SMALL_N - 2} instance(s) not retrieved")
    assert "\n" not in result.error
    assert "404" in result.error or "deleted" in result.error


def test_one_missing_instance_is_a_partial_retrieve(mutable_orthanc, tmp_path):
    client = _client(mutable_orthanc, "dicomweb")
    refs = client.find_instances(mutable_orthanc.small_study)

    def progress(p):
        if p.done == 1:
            mutable_orthanc.server.delete_instance(refs[3].sop_uid)

    result = client.retrieve(mutable_orthanc.small_study, out_dir=tmp_path, progress=progress)
    assert result.failed == [refs[3].sop_uid] and len(result.written) == SMALL_N - 1
    assert not result.complete and refs[3].sop_uid in result.error


def test_a_wrong_or_damaged_instance_from_the_node_is_not_written(ct_dicom_dir, tmp_path):
    """What the node sends is checked before it gets its name: another instance than asked for,
    or pixel data shorter than its header says, is failed (by UID, with the reason)."""
    from app.pacs.models import InstanceRef
    from app.pacs.transfer import run_retrieve

    files = sorted(ct_dicom_dir.glob("*.dcm"))[:3]
    sources = [pydicom.dcmread(p) for p in files]
    study = str(sources[0].StudyInstanceUID)
    refs = [InstanceRef(study, str(d.SeriesInstanceUID), str(d.SOPInstanceUID), i) for i, d in enumerate(sources)]

    def fetch(ref):
        i = refs.index(ref)
        ds = pydicom.dcmread(files[i])
        if i == 1:
            return pydicom.dcmread(files[2])  # the wrong instance
        if i == 2:
            ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]  # cut short
        return ds

    node = parse_node_arg(None, "PACS@127.0.0.1:104")
    result = run_retrieve(node, refs, study, None, tmp_path, fetch, None, None)
    assert [p.name for p in result.written] == [f"{refs[0].sop_uid}.dcm"]
    assert result.failed == [refs[1].sop_uid, refs[2].sop_uid] and not result.complete
    assert "failed verification: SOPInstanceUID is" in result.error and "(and 1 more)" in result.error
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [f"{refs[0].sop_uid}.dcm"]


def test_c_move_to_a_destination_the_node_does_not_know(orthanc, tmp_path):
    from app.devtools.orthanc import free_port

    node = parse_node_arg(None, orthanc.server.dimse_arg, calling_ae="UNKNOWNAE", move_port=free_port())
    result = client_for(node).retrieve(orthanc.small_study, out_dir=tmp_path)
    assert result.written == [] and len(result.failed) == SMALL_N and not result.complete
    assert result.error.startswith(f"PACS node {node.label}: {SMALL_N} instance(s) not retrieved: ")
    assert "does not know our AE title 'UNKNOWNAE' as a move destination" in result.error
