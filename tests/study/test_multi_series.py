"""Folders with several series and patients, one image per SOP instance, symlinked
folders, and cine vs spatial stacks — on the shared CT/MR and pydicom's test files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from app.study.loader import load
from app.study.reformat import is_single_image

# The same 10-frame MR instance (one SOPInstanceUID) in three transfer syntaxes.
EMRI_COPIES = ("emri_small.dcm", "emri_small_big_endian.dcm", "emri_small_RLE.dcm")


def third_patient(src: Path, dst: Path, n: int = 5) -> None:
    """A few CT slices re-identified as another patient's series (new UIDs throughout)."""
    dst.mkdir(parents=True)
    study, series = generate_uid(), generate_uid()
    for p in sorted(src.iterdir())[:n]:
        ds = pydicom.dcmread(p)
        ds.PatientID, ds.PatientName = "OTHER-PATIENT-3", "Third^Patient"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(dst / p.name)


def multi_patient_folder(root: Path, ct: Path, mr: Path) -> Path:
    """CT (patient 1), MR (patient 2) and a third patient's series under one folder."""
    shutil.copytree(ct, root / "patient1" / "ct")
    shutil.copytree(mr, root / "patient2" / "mr")
    third_patient(ct, root / "patient3" / "ct")
    return root


def test_several_patients_series_load_and_compare_by_identity(tmp_path, ct_dicom_dir, mr_dicom_dir):
    folder = multi_patient_folder(tmp_path / "study", ct_dicom_dir, mr_dicom_dir)
    result = load([folder])
    assert not result.errors
    vols = result.volumes
    assert sorted(v.num_slices for v in vols) == [5, 25, 48]
    assert len({v.patient.patient_id for v in vols}) == 3
    # Identity semantics: membership, index and hashing never compare arrays.
    assert vols[2] in vols and vols.index(vols[1]) == 1
    assert len({v: i for i, v in enumerate(vols)}) == 3
    assert vols[0] != vols[1] and vols[0] == vols[0]


def test_same_instance_in_several_transfer_syntaxes_is_one_series(tmp_path):
    for name in EMRI_COPIES:
        shutil.copy(get_testdata_file(name), tmp_path / name)
    result = load([tmp_path])
    assert not result.errors
    assert len(result.volumes) == 1
    v = result.volumes[0]
    assert v.num_slices == 10  # not 3 x 10
    assert [Path(f).name for f in v.source_files] == ["emri_small.dcm"]  # uncompressed, first
    note = next(w for w in v.warnings if "duplicate" in w)
    assert "SOPInstanceUID" in note and "emri_small_RLE.dcm" in note and "emri_small_big_endian.dcm" in note


def test_compressed_only_copies_keep_the_first(tmp_path):
    shutil.copy(get_testdata_file("emri_small_RLE.dcm"), tmp_path / "a_rle.dcm")
    shutil.copy(get_testdata_file("emri_small_RLE.dcm"), tmp_path / "b_rle.dcm")
    (v,) = load([tmp_path]).volumes
    assert v.num_slices == 10 and [Path(f).name for f in v.source_files] == ["a_rle.dcm"]


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path, ct_dicom_dir, mr_dicom_dir):
    root = tmp_path / "links"
    root.mkdir()
    os.symlink(ct_dicom_dir, root / "ct")  # a linked series is read
    os.symlink(ct_dicom_dir, root / "ct-again")  # a second link to it is not read twice
    os.symlink(root, root / "loop")  # a folder linking to itself
    (root / "sub").mkdir()
    os.symlink(root, root / "sub" / "up")  # a link to an ancestor
    os.symlink(mr_dicom_dir, root / "sub" / "mr")
    start = time.monotonic()
    result = load([root])
    assert time.monotonic() - start < 120  # a generous ceiling: a loop would never end
    assert not result.errors
    assert sorted(v.num_slices for v in result.volumes) == [25, 48]


def write_cine(path: Path) -> None:
    """pydicom's 10-frame MR relabelled as a cine: frames over time, 33 ms apart."""
    ds = pydicom.dcmread(get_testdata_file("emri_small.dcm"))
    ds.FrameTime = 33.0
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path)


def test_cine_is_temporal_and_offers_no_reformat(tmp_path, ct_volume):
    write_cine(tmp_path / "cine.dcm")
    (cine,) = load([tmp_path / "cine.dcm"]).volumes
    assert cine.num_slices == 10 and cine.temporal and is_single_image(cine)
    assert not ct_volume.temporal and not is_single_image(ct_volume)


def test_cli_info_on_a_multi_patient_folder(tmp_path, ct_dicom_dir, mr_dicom_dir):
    """The headless path on the same folder: exit 0, every series listed once, no traceback."""
    import json

    folder = multi_patient_folder(tmp_path / "study", ct_dicom_dir, mr_dicom_dir)
    proc = subprocess.run([sys.executable, "-m", "app", "info", "--json", str(folder)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    series = json.loads(proc.stdout)
    assert sorted(s["size"][2] for s in series) == [5, 25, 48]
    assert len({s["series_uid"] for s in series}) == 3


@pytest.mark.parametrize("bad", ["empty", "garbage"])
def test_unreadable_folder_reports_path_and_reason(tmp_path, bad):
    folder = tmp_path / bad
    folder.mkdir()
    if bad == "garbage":
        (folder / "scan.dcm").write_bytes(b"not a dicom file at all" * 20)
    result = load([folder])
    assert not result.volumes
    (err,) = result.errors
    assert str(folder) in str(err) and err.reason


def test_cli_info_on_a_symlink_loop_ends_and_counts_each_instance_once(tmp_path, mr_dicom_dir):
    """`info` on a folder that links to itself and holds the MR twice (a link and three
    transfer-syntax copies of pydicom's MR): exit 0, two series, each image once."""
    import json

    root = tmp_path / "loop"
    root.mkdir()
    os.symlink(root, root / "self")
    os.symlink(mr_dicom_dir, root / "mr")
    shutil.copytree(mr_dicom_dir, root / "mr-copy")  # same instances, other files
    for name in EMRI_COPIES:
        shutil.copy(get_testdata_file(name), root / name)
    proc = subprocess.run([sys.executable, "-m", "app", "info", "--json", str(root)], capture_output=True,
                          text=True, timeout=300)  # the ceiling: a loop would never return
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    series = json.loads(proc.stdout)
    assert sorted(s["size"][2] for s in series) == [10, 25]
