"""``care-viewer export``: by run folder and by audit-trail id, exit codes, refusals."""
from __future__ import annotations

import json

import pydicom
import pytest

from app.audit.store import persist
from app.cli.main import main
from app.pipeline.run_io import read_run

pytestmark = pytest.mark.slow


def test_export_a_run_folder(ct_run, tmp_path, capsys):
    out = tmp_path / "dicom"
    assert main(["export", str(ct_run.folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rid = ct_run.record.run_id
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{rid[:8]}-{k}.dcm" for k in ("seg", "sr", "pdf"))
    assert f"run {rid}: 3 DICOM files written to {out}" in printed
    assert {pydicom.dcmread(out / n).Modality for n in names} == {"SEG", "SR", "DOC"}
    # A second export into the same folder is refused, --force replaces.
    assert main(["export", str(ct_run.folder), "--out", str(out), "--sr"]) == 2
    assert "exists (refused; pass --force to replace)" in capsys.readouterr().err
    assert main(["export", str(ct_run.folder), "--out", str(out), "--sr", "--force"]) == 0


def test_export_by_run_id_from_the_audit_trail(ct_run, tmp_path, capsys):
    persist(read_run(ct_run.folder))
    out = tmp_path / "by-id"
    rid = ct_run.record.run_id
    assert main(["export", rid[:8], "--out", str(out), "--seg", "--deidentify"]) == 0
    assert "(de-identified)" in capsys.readouterr().out
    (path,) = out.iterdir()
    seg = pydicom.dcmread(path)
    assert seg.PatientIdentityRemoved == "YES" and seg.SegmentSequence[0].SegmentLabel == "clinician region 1"


def test_export_refusal_is_one_line(ct_run, copy_run, tmp_path, capsys):
    folder = copy_run(ct_run)
    data = json.loads((folder / "run.json").read_text())
    data["input"].update(study_uid="", series_uid="", source_path="/data/ct.nii.gz")
    (folder / "run.json").write_text(json.dumps(data))
    assert main(["export", str(folder), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: run {data['run_id']}: its source (ct.nii.gz) is not DICOM, so there is no source "
                   f"study or instance for a DICOM object to belong to or reference")
    assert not (tmp_path / "x").exists()
