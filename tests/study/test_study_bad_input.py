"""Corrupt, mixed and awkward inputs, built in tmp_path from real files."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from app.study.loader import load
from app.study.sample import sample_study_path

MR_SMALL = Path(pydicom.data.get_testdata_file("MR_small.dcm"))


def _copy_series(src: Path, dst: Path, n: int | None = None) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    files = sorted(src.glob("*.dcm"))[:n] if n else sorted(src.glob("*.dcm"))
    return [Path(shutil.copy(f, dst / f.name)) for f in files]


def test_truncated_pixel_data(tmp_path):
    data = MR_SMALL.read_bytes()
    bad = tmp_path / "trunc.dcm"
    bad.write_bytes(data[: len(data) - 1000])
    res = load(bad)
    assert not res.volumes and len(res.errors) == 1
    assert res.errors[0].path == str(bad) and "truncated pixel data" in res.errors[0].reason


def test_truncated_compressed_pixel_data(tmp_path):
    src = Path(pydicom.data.get_testdata_file("MR_small_RLE.dcm"))
    data = src.read_bytes()
    bad = tmp_path / "rle_trunc.dcm"
    bad.write_bytes(data[: len(data) - 2000])
    res = load(bad)
    assert not res.volumes and len(res.errors) == 1
    assert "RLE Lossless" in res.errors[0].reason


def test_random_bytes_named_dcm(tmp_path):
    bad = tmp_path / "noise.dcm"
    bad.write_bytes(random.Random(1).randbytes(5000))
    res = load(bad)
    assert not res.volumes and [e.reason for e in res.errors] == ["not a DICOM file"]


def test_empty_folder(tmp_path):
    res = load(tmp_path)
    assert not res.volumes and len(res.errors) == 1 and "empty folder" in res.errors[0].reason


def test_missing_path(tmp_path):
    res = load(tmp_path / "nope")
    assert res.errors[0].reason == "no such file or folder"


def test_folder_mixing_good_and_bad_files(tmp_path, mr_dicom_dir):
    good = _copy_series(mr_dicom_dir, tmp_path / "series")
    (tmp_path / "garbage.dcm").write_bytes(b"\x00" * 10 + b"hello")
    data = good[3].read_bytes()
    good[3].write_bytes(data[: len(data) // 2])  # one slice truncated
    (tmp_path / "notes.txt").write_text("not an image")  # skipped quietly
    (tmp_path / "broken.nii.gz").write_bytes(b"not gzip at all")
    res = load(tmp_path)
    assert len(res.volumes) == 1
    vol = res.volumes[0]
    assert vol.array.shape == (24, 256, 256)  # the truncated slice is left out...
    assert any("non-uniform slice spacing" in w for w in vol.warnings)  # ...and its gap reported
    reasons = {Path(e.path).name: e.reason for e in res.errors}
    assert reasons["garbage.dcm"] == "not a DICOM file"
    assert "truncated pixel data" in reasons[good[3].name]
    assert "cannot read NIFTI file" in reasons["broken.nii.gz"]
    assert "notes.txt" not in reasons


def test_shuffled_file_names_still_sort_by_position(tmp_path, ct_dicom_dir):
    files = sorted(ct_dicom_dir.glob("*.dcm"))[:12]
    names = [f"{i:03d}.dcm" for i in range(len(files))]
    random.Random(7).shuffle(names)
    for f, n in zip(files, names):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = random.Random(n).randint(1, 999)  # misleading numbers too
        ds.save_as(tmp_path / n)
    vol = load(tmp_path).volumes[0]
    reference = load(files).volumes[0]
    assert np.array_equal(vol.array, reference.array)
    z = [float(h.ImagePositionPatient[2]) for h in vol.headers]
    assert z == sorted(z) and vol.origin[2] == min(z)


def test_series_with_two_orientations_splits(tmp_path, mr_dicom_dir):
    files = sorted(mr_dicom_dir.glob("*.dcm"))[:10]
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        if i % 2:  # every other slice becomes sagittal, same series UID
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
            ds.ImagePositionPatient = [float(i), -100.0, 100.0]
        ds.save_as(tmp_path / f.name)
    res = load(tmp_path)
    assert res.errors == []
    assert sorted(v.array.shape[0] for v in res.volumes) == [5, 5]
    assert len({v.series_uid for v in res.volumes}) == 1
    for v in res.volumes:
        assert any("split into 2 volumes (orientation)" in w for w in v.warnings)
        assert np.linalg.det(v.direction) == pytest.approx(1.0)
    sag = [v for v in res.volumes if abs(v.direction[0, 2]) == 1][0]
    np.testing.assert_allclose(sag.direction[:, 2], [-1, 0, 0])  # (0,1,0) x (0,0,-1)
    assert sag.origin[0] == 9.0  # first slice = smallest position along -x


def test_echoes_and_sizes_split(tmp_path, mr_dicom_dir):
    files = sorted(mr_dicom_dir.glob("*.dcm"))[:6]
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.EchoNumbers = 1 + i % 2
        ds.save_as(tmp_path / f.name)
    res = load(tmp_path)
    assert [v.array.shape[0] for v in res.volumes] == [3, 3]
    assert all("echo" in v.description for v in res.volumes)


def test_duplicate_positions_are_reported(tmp_path, mr_dicom_dir):
    files = _copy_series(mr_dicom_dir, tmp_path, n=5)
    ds = pydicom.dcmread(files[2])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "copy.dcm")
    vol = load(tmp_path).volumes[0]
    assert vol.array.shape[0] == 5
    assert any("duplicate positions" in w for w in vol.warnings)


def test_repeated_positions_with_temporal_ids_become_phases(tmp_path, mr_dicom_dir):
    for phase in (1, 2):
        for f in sorted(mr_dicom_dir.glob("*.dcm"))[:4]:
            ds = pydicom.dcmread(f)
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.TemporalPositionIdentifier = phase
            ds.save_as(tmp_path / f"p{phase}_{f.name}")
    res = load(tmp_path)
    assert [v.array.shape[0] for v in res.volumes] == [4, 4]


def test_nifti_round_trip_and_unreadable_nifti(tmp_path, shared_data):
    img = sitk.ReadImage(str(shared_data / "mr-brain-brain1/brain1_image.nrrd"))
    sitk.WriteImage(img, str(tmp_path / "brain.nii.gz"))
    sitk.WriteImage(img, str(tmp_path / "brain.mha"))
    nrrd = load(shared_data / "mr-brain-brain1/brain1_image.nrrd").volumes[0]
    for name in ("brain.nii.gz", "brain.mha"):
        v = load(tmp_path / name).volumes[0]
        assert np.array_equal(v.array, nrrd.array)
        np.testing.assert_allclose(v.origin, nrrd.origin, atol=1e-3)
        np.testing.assert_allclose(v.direction, nrrd.direction, atol=1e-5)
    (tmp_path / "bad.nii").write_bytes(b"\x00" * 100)
    res = load(tmp_path / "bad.nii")
    assert not res.volumes and "\n" not in res.errors[0].reason and res.errors[0].reason.startswith("cannot read")


def test_png_and_jpeg(tmp_path):
    grey = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(48, 64)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    colour = np.zeros((20, 30, 3), np.uint8)
    colour[..., 2] = 200  # BGR: red
    cv2.imwrite(str(tmp_path / "c.png"), colour)
    cv2.imwrite(str(tmp_path / "c.jpg"), colour)
    g = load(tmp_path / "g.png").volumes[0]
    assert g.array.shape == (1, 48, 64) and np.array_equal(g.array[0], grey)
    assert g.modality == "OT" and g.spacing == (1.0, 1.0, 1.0)
    c = load(tmp_path / "c.png").volumes[0]
    assert c.is_rgb and tuple(c.array[0, 0, 0]) == (200, 0, 0)  # RGB order
    j = load(tmp_path / "c.jpg").volumes[0]
    assert j.is_rgb and abs(int(j.array[0, 5, 5, 0]) - 200) < 8
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    assert "not a readable image" in load(tmp_path / "broken.png").errors[0].reason


def test_bundled_sample_loads():
    path = sample_study_path()
    res = load(path)
    assert res.errors == [] and len(res.volumes) == 1
    vol = res.volumes[0]
    assert vol.array.shape == (16, 512, 512) and vol.modality == "CT"
    ts = pydicom.dcmread(vol.source_files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert ts == pydicom.uid.RLELossless
    assert sum(p.stat().st_size for p in path.iterdir()) < 8_000_000


def test_non_square_pixel_spacing_matches_simpleitk(tmp_path, ct_dicom_dir):
    """PixelSpacing is (row spacing, column spacing): y first. Anisotropic pixels catch a swap."""
    files = sorted(ct_dicom_dir.glob("*.dcm"))[:4]
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds.PixelSpacing = [0.5, 0.8]  # 0.5 mm between rows (y), 0.8 mm between columns (x)
        ds.save_as(tmp_path / f"s{i}.dcm")
    result = load(tmp_path)
    assert not result.errors and len(result.volumes) == 1
    vol = result.volumes[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    ref = reader.Execute()
    assert vol.spacing[:2] == pytest.approx((0.8, 0.5))
    np.testing.assert_allclose(vol.spacing, ref.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(vol.origin, ref.GetOrigin(), atol=1e-4)
    # A voxel's LPS position uses x spacing along columns and y spacing along rows.
    np.testing.assert_allclose(
        vol.index_to_lps([[10, 20, 1]])[0], ref.TransformIndexToPhysicalPoint((10, 20, 1)), atol=1e-4
    )
