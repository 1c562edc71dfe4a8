"""The shared CT/MR DICOM series against their NRRD originals (real data, physical space)."""
from __future__ import annotations

import numpy as np
import pytest

from app.study.loader import load
from app.study.volume import Volume


@pytest.fixture(scope="module")
def ct(ct_dicom_dir) -> Volume:
    res = load(ct_dicom_dir)
    assert res.errors == [] and len(res.volumes) == 1
    return res.volumes[0]


@pytest.fixture(scope="module")
def mr(mr_dicom_dir) -> Volume:
    res = load(mr_dicom_dir)
    assert res.errors == [] and len(res.volumes) == 1
    return res.volumes[0]


def _one(path) -> Volume:
    res = load(path)
    assert res.errors == [], res.errors
    assert len(res.volumes) == 1
    return res.volumes[0]


@pytest.mark.parametrize("which", ["ct", "mr"])
def test_dicom_series_equals_nrrd(which, ct, mr, shared_data):
    dicom = ct if which == "ct" else mr
    nrrd = _one(shared_data / ("ct-chest-lung1/lung1_image.nrrd" if which == "ct" else "mr-brain-brain1/brain1_image.nrrd"))
    assert np.array_equal(dicom.array, nrrd.array)
    np.testing.assert_allclose(dicom.spacing, nrrd.spacing, atol=1e-4)
    np.testing.assert_allclose(dicom.origin, nrrd.origin, atol=1e-3)
    np.testing.assert_allclose(dicom.direction, nrrd.direction, atol=1e-6)
    # Both are right-handed after loading: the slice axis is row x column.
    assert np.linalg.det(dicom.direction) == pytest.approx(1.0)
    assert np.allclose(dicom.direction[:, 2], np.cross(dicom.direction[:, 0], dicom.direction[:, 1]))


def test_ct_is_hounsfield_int16_with_file_window(ct):
    assert ct.modality == "CT" and ct.array.dtype == np.int16
    assert ct.array.min() == -1024  # stored 0 + intercept -1024
    assert (ct.window.center, ct.window.width) == (-600.0, 1500.0)
    assert ct.size == (512, 512, 48) and len(ct.headers) == 48
    assert "PixelData" not in ct.headers[0] and ct.headers[0].Modality == "CT"
    assert ct.patient.patient_id == "LUNG1" and ct.warnings == []


def test_brain_nrrd_is_made_right_handed(shared_data):
    vol = _one(shared_data / "mr-brain-brain1/brain1_image.nrrd")
    import SimpleITK as sitk

    img = sitk.ReadImage(str(shared_data / "mr-brain-brain1/brain1_image.nrrd"))
    assert np.linalg.det(np.reshape(img.GetDirection(), (3, 3))) == pytest.approx(-1.0)
    assert np.linalg.det(vol.direction) == pytest.approx(1.0)
    # Same physical point for the same voxel value: SimpleITK's index (i,j,k) is ours (i,j,nz-1-k).
    nz = vol.array.shape[0]
    p_sitk = img.TransformIndexToPhysicalPoint((10, 20, 3))
    np.testing.assert_allclose(vol.index_to_lps([(10, 20, nz - 1 - 3)])[0], p_sitk, atol=1e-6)
    assert vol.array[nz - 1 - 3, 20, 10] == sitk.GetArrayViewFromImage(img)[3, 20, 10]


def test_brain_label_maps_onto_dicom_mr_through_lps(mr, shared_data):
    label = _one(shared_data / "mr-brain-brain1/brain1_label.nrrd")
    on = np.argwhere(label.array > 0)[:, ::-1]  # (x, y, z) indices
    assert len(on) > 50
    centroid_lps = label.index_to_lps(on).mean(axis=0)

    # Nearest-neighbour resampling of the label onto the DICOM MR grid.
    zz, yy, xx = np.indices(mr.array.shape)
    ijk = np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)
    src = np.rint(label.lps_to_index(mr.index_to_lps(ijk))).astype(int)
    inside = np.all((src >= 0) & (src < np.array(label.size)), axis=1)
    resampled = np.zeros(len(ijk), bool)
    s = src[inside]
    resampled[inside] = label.array[s[:, 2], s[:, 1], s[:, 0]] > 0
    resampled = resampled.reshape(mr.array.shape)

    assert resampled.sum() == len(on)  # same grid spacing: every label voxel lands once
    got = np.argwhere(resampled)[:, ::-1]
    np.testing.assert_allclose(mr.index_to_lps(got).mean(axis=0), centroid_lps, atol=1e-3)
    # The MR intensities under the mapped label are the NRRD's intensities under the label.
    nrrd = _one(shared_data / "mr-brain-brain1/brain1_image.nrrd")
    assert np.array_equal(np.sort(mr.array[resampled]), np.sort(nrrd.array[label.array > 0]))
    # The label file's own index order would be wrong: its slice axis runs the other way.
    import SimpleITK as sitk

    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "mr-brain-brain1/brain1_label.nrrd"))) > 0
    assert not np.array_equal(resampled, raw) and np.array_equal(resampled, raw[::-1])


def test_on_partial_fills_the_final_array_in_place(ct_dicom_dir):
    calls = []

    def on_partial(vol, done, total):
        calls.append((vol, done, total, vol.array, int(np.count_nonzero(vol.array[0] != 0))))

    res = load(ct_dicom_dir, on_partial=on_partial)
    vol = res.volumes[0]
    assert calls[0][1] == 1 and calls[0][2] == 48
    assert calls[0][4] > 0  # the first slice is already in the array at the first call
    assert calls[-1][1] == 48
    assert all(c[0] is vol and c[3] is vol.array for c in calls)  # one array, filled in place


def test_cancel_stops_and_reports(ct_dicom_dir):
    polls = []

    def cancel():
        polls.append(1)
        return len(polls) > 5

    res = load(ct_dicom_dir, cancel=cancel)
    assert res.cancelled and res.volumes == []
    assert len(polls) == 6  # stopped at the first poll that said yes


def test_progress_reports_both_phases(ct_dicom_dir):
    seen = []
    load(ct_dicom_dir, progress=lambda d, t, m: seen.append((d, t, m)))
    assert ("Reading DICOM headers" in {m for _, _, m in seen}) and seen[-1][:2] == (48, 48)
