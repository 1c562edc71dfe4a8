"""The window a file without a modality gets: the shared CT as DICOM, NRRD and RAS NIfTI shows
(and reaches the model) through the same window, pixel for pixel; MR, a CT stored without its
rescale and other non-HU data keep the percentile window. The run records the window applied."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from app.cli.main import main
from app.study.display import CT_PRESETS, auto_window, slice_rgb
from app.study.loader import load
from app.study.modality_hint import check_hu
from app.study.volume import ModalitySource, Volume

DETECTED = "CT mediastinum (detected from HU range)"
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _one(path: Path) -> Volume:
    res = load(path)
    assert res.errors == [] and len(res.volumes) == 1, res.errors
    return res.volumes[0]


def _pydicom_file(name: str) -> Path:
    import data_store  # pydicom-data

    for root in (Path(data_store.__file__).parent / "data", PYDICOM_FILES):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(name)


@pytest.fixture(scope="module")
def ct_nrrd(shared_data) -> Path:
    return shared_data / "ct-chest-lung1" / "lung1_image.nrrd"


@pytest.fixture(scope="module")
def ct_ras_nifti(ct_nrrd, tmp_path_factory) -> Path:
    """The CT stored in RAS order (x and y flipped, direction diag(-1, -1, 1) in LPS: the
    identity in RAS, as many NIfTI tools write it)."""
    image = sitk.Flip(sitk.ReadImage(str(ct_nrrd)), [True, True, False])
    assert np.allclose(image.GetDirection(), (-1, 0, 0, 0, -1, 0, 0, 0, 1))
    out = tmp_path_factory.mktemp("nifti") / "lung1_ras.nii.gz"
    sitk.WriteImage(image, str(out))
    return out


@pytest.fixture(scope="module")
def ct_dicom_without_voi(ct_dicom_dir, tmp_path_factory) -> Path:
    """The DICOM series with its WindowCenter/Width removed: the default a CT gets from the
    modality alone, which is what a file without a VOI window (NRRD, NIfTI) can be compared to."""
    out = tmp_path_factory.mktemp("dicom-novoi")
    for f in sorted(ct_dicom_dir.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        del ds.WindowCenter, ds.WindowWidth
        ds.save_as(out / f.name)
    return out


def test_nrrd_and_ras_nifti_ct_get_the_dicom_ct_window_pixel_for_pixel(ct_volume, ct_nrrd, ct_ras_nifti,
                                                                       ct_dicom_without_voi, ct_tumour):
    dicom = _one(ct_dicom_without_voi)
    nrrd, nifti = _one(ct_nrrd), _one(ct_ras_nifti)
    assert (dicom.modality, dicom.modality_source, dicom.window) == ("CT", ModalitySource.HEADER, CT_PRESETS["mediastinum"])
    mediastinum = CT_PRESETS["mediastinum"]
    for v in (nrrd, nifti):
        # The file names no modality: it stays "OT", the hint says CT and where it came from.
        assert (v.modality, v.modality_source, v.modality_hint) == ("OT", ModalitySource.HU_RANGE, "CT")
        assert (v.window.center, v.window.width, v.window.name) == (mediastinum.center, mediastinum.width, DETECTED)
    k = ct_tumour.slice_index
    assert np.array_equal(dicom.array, nrrd.array)  # same voxels, same layout
    reference = slice_rgb(dicom, k)
    assert np.array_equal(slice_rgb(nrrd, k), reference)
    # RAS storage: x and y run the other way in the file; the display frame undoes that, so the
    # same anatomy gives the same grey values in the same places.
    assert np.array_equal(slice_rgb(nifti, k), reference)
    # What the NRRD got before (the percentile window) shows different pixels.
    assert not np.array_equal(slice_rgb(nrrd, k, auto_window(nrrd.array)), reference)
    # The DICOM with its own VOI window keeps it (modality known: unchanged behaviour).
    assert (ct_volume.window.name, ct_volume.window.center, ct_volume.window.width) == ("file", -600.0, 1500.0)
    assert ct_volume.modality_source is ModalitySource.HEADER and ct_volume.modality_hint == ""


def test_mr_and_non_hu_values_keep_the_percentile_window(shared_data, ct_nrrd, tmp_path):
    mr = _one(shared_data / "mr-brain-brain1" / "brain1_image.nrrd")
    assert (mr.modality, mr.modality_source, mr.modality_hint) == ("OT", ModalitySource.NONE, "")
    assert mr.window == auto_window(mr.array, "auto percentile")
    image = sitk.ReadImage(str(ct_nrrd))
    hu = sitk.GetArrayFromImage(image)
    cases = {
        # A CT written without its rescale applied (stored values 0..4095, air ~ 0) is not HU.
        "raw.nrrd": (hu.astype(np.int32) + 1024).astype(np.uint16),
        # Resampled / normalised floats are not trusted as HU.
        "float.nii.gz": hu.astype(np.float32) + 0.25,
        "zscore.nii.gz": ((hu - hu.mean()) / hu.std()).astype(np.float32),
        # An MR phase map: a spread of values far below -1024.
        "phase.nii.gz": np.random.default_rng(0).integers(-4096, 4096, hu.shape).astype(np.int16),
    }
    for name, arr in cases.items():
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(image)
        sitk.WriteImage(out, str(tmp_path / name))
        v = _one(tmp_path / name)
        assert (v.modality_source, v.modality_hint) == (ModalitySource.NONE, ""), name
        assert v.window.name == "auto percentile" and v.window == auto_window(v.array, "auto percentile"), name
        assert not check_hu(arr).is_hu, name


@pytest.mark.parametrize(("name", "is_ct"), [
    ("CT_small.dcm", True),  # a tight head FOV: little air, no padding
    ("693_UNCR.dcm", True),  # -3024 padding outside the reconstruction circle (28 % of the voxels)
    ("MR_small.dcm", False),
    ("emri_small.dcm", False),  # multi-frame MR
])
def test_pydicom_data_converted_to_nifti(name, is_ct, tmp_path):
    """Real files from pydicom / pydicom-data written as NIfTI (SimpleITK applies the rescale):
    the CTs are detected from their values, the MRs are not; the DICOM itself keeps its own."""
    src = _pydicom_file(name)
    dicom = _one(src)
    out = tmp_path / (Path(name).stem + ".nii.gz")
    sitk.WriteImage(sitk.ReadImage(str(src)), str(out))
    nifti = _one(out)
    # The same values (in whatever storage order): only the label differs.
    assert np.array_equal(np.sort(nifti.array, axis=None).astype(float), np.sort(dicom.array, axis=None).astype(float))
    if is_ct:
        assert (nifti.modality_source, nifti.modality_hint, nifti.window.name) == (ModalitySource.HU_RANGE, "CT", DETECTED)
        assert dicom.modality == "CT" and dicom.modality_source is ModalitySource.HEADER
    else:
        assert (nifti.modality_source, nifti.modality_hint) == (ModalitySource.NONE, "")
        assert nifti.window.name == "auto percentile"


def test_info_json_reports_the_detected_hint_and_window(capsys, ct_nrrd, shared_data):
    assert main(["info", str(ct_nrrd), str(shared_data / "mr-brain-brain1" / "brain1_image.nrrd"), "--json"]) == 0
    ct, mr = json.loads(capsys.readouterr().out)
    assert (ct["modality"], ct["modality_hint"], ct["modality_source"]) == ("OT", "CT", "detected from HU range")
    assert ct["window"] == {"center": 50.0, "width": 350.0, "name": DETECTED}
    assert (mr["modality"], mr["modality_hint"], mr["modality_source"]) == ("OT", "", "none")
    assert mr["window"]["name"] == "auto percentile"
    assert main(["info", str(ct_nrrd)]) == 0
    assert "OT  (CT detected from HU range)" in capsys.readouterr().out


def test_the_run_records_the_window_applied_to_the_model_image(tiny_pipeline_factory, ct_nrrd, ct_tumour):
    """prepare() windows the slice the model sees and records that window and the modality source."""
    pipeline = tiny_pipeline_factory()
    nrrd = _one(ct_nrrd)
    k = ct_tumour.slice_index
    ctx = pipeline.prepare(nrrd, k, "Is there a nodule?")
    info = ctx.record.input
    assert info.window == {"center": 50.0, "width": 350.0, "name": DETECTED}
    assert (info.modality, info.modality_source, info.modality_hint) == ("OT", "detected from HU range", "CT")
    assert np.array_equal(ctx.image_rgb, slice_rgb(nrrd, k))
    lung = CT_PRESETS["lung"]
    ctx = pipeline.prepare(nrrd, k, "Is there a nodule?", window=lung)  # the viewer's window, when given
    assert ctx.record.input.window == lung.to_dict()
    assert np.array_equal(ctx.image_rgb, slice_rgb(nrrd, k, lung))
