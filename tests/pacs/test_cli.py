"""``care-viewer pacs echo|query|retrieve|store`` against a real Orthanc: output, exit codes, Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from app.cli.main import main
from app.pacs.nodes import PacsNode, PacsProtocol, save_nodes
from tests.pacs.conftest import SMALL_N, SMALL_SERIES_UID, new_instances_from

REPO = Path(__file__).resolve().parents[2]


def test_echo_both_protocols_and_a_configured_node(orthanc, capsys):
    s = orthanc.server
    assert main(["pacs", "echo", "--dimse", s.dimse_arg]) == 0
    assert "C-ECHO succeeded" in capsys.readouterr().out
    save_nodes([PacsNode("dept", PacsProtocol.DICOMWEB, url=s.dicomweb_url)])
    assert main(["pacs", "echo", "--node", "dept"]) == 0
    assert f"PACS node dept ({s.dicomweb_url}): DICOMweb answers" in capsys.readouterr().out
    assert main(["pacs", "echo", "--node", "absent"]) == 1
    assert "no PACS node named 'absent'" in capsys.readouterr().err


def test_echo_of_a_node_that_is_down_exits_6(closed_port, capsys):
    assert main(["pacs", "echo", "--dimse", f"PACS@127.0.0.1:{closed_port}"]) == 6
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: PACS node PACS@127.0.0.1:{closed_port}: cannot connect") and "\n" not in err


def test_query_json_is_the_same_over_both_protocols(orthanc, capsys):
    s = orthanc.server
    answers = []
    for node in (["--dicomweb", s.dicomweb_url], ["--dimse", s.dimse_arg]):
        assert main(["pacs", "query", *node, "--date", "2021-01-01-2021-12-31", "--modality", "MR", "--series",
                     "--json"]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    assert answers[0]["query"] == {"StudyDate": "20210101-20211231", "ModalitiesInStudy": "MR"}
    assert answers[0]["studies"] == answers[1]["studies"]
    (study,) = answers[0]["studies"]
    assert (study["study_uid"], study["accession"], study["n_instances"]) == (orthanc.small_study, "ACC-42", SMALL_N)
    assert [x["series_uid"] for x in study["series"]] == [SMALL_SERIES_UID]


def test_query_table_and_bad_arguments(orthanc, capsys):
    assert main(["pacs", "query", "--dimse", orthanc.server.dimse_arg, "--patient-name", "LUNG1*"]) == 0
    out = capsys.readouterr().out
    assert orthanc.ct_study in out and "LUNG1^RESEARCH" in out and out.rstrip().endswith("1 study on "
                                                                                         + orthanc.server.dimse_arg)
    assert main(["pacs", "query", "--dimse", orthanc.server.dimse_arg, "--date", "2021-13-01"]) == 1
    assert "not a valid date" in capsys.readouterr().err
    assert main(["pacs", "query", "--dimse", "no-port-here"]) == 1
    assert "AET@HOST:PORT" in capsys.readouterr().err


def test_retrieve_and_resume(orthanc, tmp_path, capsys):
    args = ["pacs", "retrieve", "--dimse", orthanc.server.dimse_arg, "--study", orthanc.small_study, "--out",
            str(tmp_path)]
    assert main(args) == 0
    assert f"{SMALL_N} instance(s) written, 0 already there" in capsys.readouterr().out
    assert len(list((tmp_path / orthanc.small_study / SMALL_SERIES_UID).glob("*.dcm"))) == SMALL_N
    assert main(args) == 0
    assert f"0 instance(s) written, {SMALL_N} already there" in capsys.readouterr().out


def test_retrieve_of_a_study_that_is_not_there(orthanc, tmp_path, capsys):
    assert main(["pacs", "retrieve", "--dicomweb", orthanc.server.dicomweb_url, "--study", "1.2.3.4",
                 "--out", str(tmp_path)]) == 6
    assert "no instances of study 1.2.3.4" in capsys.readouterr().err


def test_ctrl_c_keeps_what_was_written_and_says_how_many(orthanc, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "app", "pacs", "retrieve", "--dicomweb", orthanc.server.dicomweb_url,
                             "--study", orthanc.ct_study, "--out", str(out)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.rglob("*.dcm")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail(f"the retrieve ended before it could be interrupted: {proc.communicate()}")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    kept = sorted(p for p in out.rglob("*.dcm"))
    assert proc.returncode == 1, (stdout, stderr)
    assert f"cancelled: kept {len(kept)} of 48 instance(s)" in stderr
    assert 0 < len(kept) < 48 and not list(out.rglob(".part-*"))
    for p in kept:  # every file kept is complete
        assert pydicom.dcmread(p).pixel_array.shape == (512, 512)


def test_store_files(orthanc, ct_dicom_dir, tmp_path, capsys):
    study = generate_uid()
    ds = new_instances_from(sorted(ct_dicom_dir.glob("*.dcm"))[:1], study_uid=study)[0]
    path = tmp_path / "copy.dcm"
    ds.save_as(path, enforce_file_format=True)
    try:
        assert main(["pacs", "store", "--dicomweb", orthanc.server.dicomweb_url, "--file", str(path)]) == 0
        assert f"stored 1 of 1 object(s) on {orthanc.server.dicomweb_url}" in capsys.readouterr().out
        assert str(ds.SOPInstanceUID) in orthanc.server.instances()
    finally:
        orthanc.server.delete_study(study)
    assert main(["pacs", "store", "--dimse", orthanc.server.dimse_arg]) == 1
    assert "nothing to store" in capsys.readouterr().err


def _text_values(ds: pydicom.Dataset) -> list[str]:
    """Every string value in ``ds`` and its sequences (what a PACS would show or index)."""
    out = []
    for elem in ds.iterall():
        if elem.VR in ("PN", "LO", "SH", "ST", "LT", "UT", "CS", "DA", "UI", "AE", "DS", "IS"):
            values = elem.value if elem.VM > 1 else [elem.value]
            out.extend(str(v) for v in values if v is not None)
    return out


def _new_instances(orthanc, before: list[str]) -> dict[str, pydicom.Dataset]:
    """SOP UID -> the object Orthanc holds, for each instance not on the node ``before``."""
    import io

    new = sorted(set(orthanc.server.instances()) - set(before))
    return {uid: pydicom.dcmread(io.BytesIO(orthanc.server.instance_file(uid))) for uid in new}


def test_store_deidentify_sends_consistent_copies_and_leaves_the_files_alone(orthanc, small_files, tmp_path,
                                                                             capsys):
    first = pydicom.dcmread(small_files[0])
    derived = pydicom.dcmread(small_files[1])  # an instance referencing the first, as a key image would
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = first.SOPClassUID, first.SOPInstanceUID
    derived.ReferencedImageSequence = [ref]
    derived.ImageComments = "compare with OTHER1^TEST's prior"  # removed (X)
    derived.SeriesDescription = "follow-up of OTHER1"  # free text: not on the retain list of a --file
    derived_path = tmp_path / "derived.dcm"
    derived.save_as(derived_path, enforce_file_format=True)
    paths = [small_files[0], derived_path, small_files[2]]
    originals = {p: p.read_bytes() for p in paths}
    sources = [pydicom.dcmread(p) for p in paths]
    before = orthanc.server.instances()
    held: dict[str, pydicom.Dataset] = {}
    try:
        args = ["pacs", "store", "--dicomweb", orthanc.server.dicomweb_url, "--deidentify"]
        assert main(args + [a for p in paths for a in ("--file", str(p))]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        held = _new_instances(orthanc, before)
        assert f"stored 3 of 3 object(s) on {orthanc.server.dicomweb_url} (de-identified" in out
        assert "; each --file kept only the attributes needed to view it: no dates, names, IDs, free text" in out
        assert len(held) == 3
    finally:
        for study in {str(ds.StudyInstanceUID) for ds in held.values()}:
            orthanc.server.delete_study(study)
    assert {p: p.read_bytes() for p in paths} == originals  # the user's files are byte-unchanged
    source_uids = {str(v) for ds in sources for v in _text_values(ds) if v.startswith("1.")}
    by_number = {int(ds.InstanceNumber): ds for ds in held.values()}
    for ds in held.values():
        texts = _text_values(ds)
        for ident in ("OTHER1", "ACC-42", "20210615", str(first.PatientName)):
            assert not any(ident in t for t in texts), (ident, [t for t in texts if ident in t])
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientID.startswith("DEID-")
        assert str(ds.SOPInstanceUID) not in source_uids and str(ds.StudyInstanceUID) not in source_uids
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # One map for the call: one new study, series and frame of reference, one pseudonym; the
    # reference follows the referenced instance to its new UID.
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert len({str(ds.get(kw)) for ds in held.values()}) == 1, kw
    new_first = by_number[int(first.InstanceNumber)]
    new_derived = by_number[int(derived.InstanceNumber)]
    assert new_derived.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_first.SOPInstanceUID
    assert "ImageComments" not in new_derived and "SeriesDescription" not in new_derived
    assert new_first.PatientID in out


def test_store_deidentify_refuses_mixed_patients_and_burned_in_text(orthanc, small_files, ct_dicom_dir,
                                                                     tmp_path, capsys):
    before = orthanc.server.instances()
    node = ["--dimse", orthanc.server.dimse_arg, "--deidentify"]
    ct = sorted(ct_dicom_dir.glob("*.dcm"))[0]
    assert main(["pacs", "store", *node, "--file", str(small_files[0]), "--file", str(ct)]) == 1
    assert "the files belong to 2 patients" in capsys.readouterr().err
    burned = pydicom.dcmread(small_files[0])
    burned.BurnedInAnnotation = "YES"
    path = tmp_path / "burned.dcm"
    burned.save_as(path, enforce_file_format=True)
    assert main(["pacs", "store", *node, "--file", str(path)]) == 2
    assert f"{path}: not sent de-identified: BurnedInAnnotation is YES" in capsys.readouterr().err
    seg = get_testdata_file("liver.dcm")  # a SEG: the image retain list would strip its segments
    if seg is not None:
        assert main(["pacs", "store", *node, "--file", seg]) == 2
        assert f"{seg}: not sent de-identified: not an image (Segmentation Storage)" in capsys.readouterr().err
    assert orthanc.server.instances() == before
