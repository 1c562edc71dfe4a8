"""DICOM export fixtures: real tiny-profile runs on the shared studies, written as run folders.

- ``ct_run``: the chest CT re-written with a full set of identifiers (birth date, accession,
  institution, referring physician, other IDs, a private tag; pixels untouched), asked a
  question that repeats the patient's name and the study date, with a clinician box on the
  labelled tumour (the box segmenter's mask is accepted);
- ``mr_run``: the brain MR, whose rows are stored posterior-to-anterior (the display frame
  flips them), with a box on the lesion.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.pipeline.record import RunRecord

CT_QUESTION = "Patient LUNG1^RESEARCH, scanned 2020-01-01: is there a mass in the right lung?"
IDENTIFIERS = {
    "PatientBirthDate": "19700203", "AccessionNumber": "ACC55501", "InstitutionName": "St Example Hospital",
    "ReferringPhysicianName": "HOUSE^GREGORY", "OtherPatientIDs": "MRN998877",
    "PatientAddress": "1 Example Road", "StationName": "CTSTATION7",
}
DCIODVFY = Path("/usr/bin/dciodvfy")


@dataclass
class RunOnDisk:
    folder: Path
    record: RunRecord
    source_dir: Path


def dciodvfy(path: Path) -> tuple[list[str], list[str]]:
    """(error lines, warning lines) of dciodvfy on ``path``; skips when dciodvfy is missing."""
    if not DCIODVFY.exists():
        pytest.skip(f"{DCIODVFY} is missing (Debian package dicom3tools): the DICOM objects are not validated")
    out = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=120)
    lines = (out.stdout + out.stderr).splitlines()
    return [l for l in lines if l.startswith("Error")], [l for l in lines if l.startswith("Warning")]


@pytest.fixture(scope="session")
def identified_ct_dir(ct_dicom_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("identified-ct")
    for f in sorted(ct_dicom_dir.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        for k, v in IDENTIFIERS.items():
            setattr(ds, k, v)
        ds.private_block(0x0009, "CARE TEST", create=True).add_new(0x01, "LO", "private note LUNG1")
        ds.save_as(folder / f.name)
    return folder


def _run(volume, k: int, question: str, box, tiny_pipeline_factory, folder: Path) -> RunOnDisk:
    from app.pipeline.run_io import write_run

    record = tiny_pipeline_factory(24).run(volume, k, question, boxes=[box])
    assert record.status == "completed", record.errors
    write_run(record, folder)
    return RunOnDisk(folder, record, Path(volume.source_files[0]).parent)


@pytest.fixture(scope="session")
def ct_run(identified_ct_dir, ct_tumour, tiny_pipeline_factory, tmp_path_factory) -> RunOnDisk:
    from app.study.loader import load

    volume = load([identified_ct_dir]).volumes[0]
    run = _run(volume, ct_tumour.slice_index, CT_QUESTION, ct_tumour.box, tiny_pipeline_factory,
               tmp_path_factory.mktemp("ct-run") / "run")
    assert [m.accepted for m in run.record.masks] == [True], "the tumour box mask is expected to pass tau"
    return run


@pytest.fixture(scope="session")
def mr_lesion(mr_dicom_dir, shared_data):
    """(volume, slice, lesion bounding box in the display frame)."""
    from app.cli.eval_cmd import label_on_grid
    from app.pipeline.segmentation.confidence import mask_bbox
    from app.study.display_frame import display_frame
    from app.study.loader import load

    v = load([mr_dicom_dir]).volumes[0]
    label = load([shared_data / "mr-brain-brain1" / "brain1_label.nrrd"]).volumes[0]
    grid = label_on_grid(label, v)
    k = int(grid.sum(axis=(1, 2)).argmax())
    return v, k, mask_bbox(np.ascontiguousarray(display_frame(v).from_array(grid[k])))


@pytest.fixture(scope="session")
def mr_run(mr_lesion, tiny_pipeline_factory, tmp_path_factory) -> RunOnDisk:
    v, k, box = mr_lesion
    return _run(v, k, "Is there an enhancing lesion?", box, tiny_pipeline_factory,
                tmp_path_factory.mktemp("mr-run") / "run")


@pytest.fixture()
def copy_run(tmp_path):
    """A writable copy of a run folder (tests that edit run.json or record overrides)."""
    def make(run: RunOnDisk, name: str = "run") -> Path:
        dst = tmp_path / name
        shutil.copytree(run.folder, dst)
        return dst
    return make


@pytest.fixture(scope="session")
def ct_two_box_run(ct_volume, ct_tumour, tiny_pipeline_factory, tmp_path_factory) -> RunOnDisk:
    """The shared CT with two clinician boxes: the tight tumour box and the looser one a
    clinician would draw (two overlapping masks)."""
    from app.pipeline.run_io import write_run
    from tests.fixtures.ct_tumour import TUMOUR_DRAWN_BOX

    record = tiny_pipeline_factory(24).run(ct_volume, ct_tumour.slice_index, "Is there a mass?",
                                           boxes=[ct_tumour.box, TUMOUR_DRAWN_BOX])
    assert record.status == "completed", record.errors
    folder = tmp_path_factory.mktemp("ct-two-box") / "run"
    write_run(record, folder)
    return RunOnDisk(folder, record, Path(ct_volume.source_files[0]).parent)
