"""Issue 13, defects 2-4 on real files: projection radiographs take their edge labels from
PatientOrientation and their spacing from the header's own source (never an invented
frame or 1 mm), MONOCHROME1 keeps its stored values, every VOI window is kept, and
overlay planes (60xx) are read. Edge cases are written with pydicom from real files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from app.cli.main import main
from app.study.overlay_planes import overlay_mask
from app.study.display import slice_rgb
from app.study.edge_labels import plane_name, projection_labels
from app.study.loader import load
from app.study.reformat import Plane


def _store(name: str) -> Path:
    import data_store  # pydicom-data

    return Path(data_store.__file__).parent / "data" / name


def _info(capsys, path: Path) -> list[dict]:
    rc = main(["info", str(path), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "Traceback" not in captured.err
    return json.loads(captured.out)


def _rewrite(src: Path, dst: Path, **changes) -> Path:
    ds = pydicom.dcmread(src)
    for key, value in changes.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(dst)
    return dst


def test_leg_film_r_f_reads_r_on_the_right(capsys, tmp_path):
    # RG3 is a real CR with PatientOrientation R\F and no spacing at all.
    ds = pydicom.dcmread(_store("RG3_UNCI.dcm"), stop_before_pixels=True)
    assert list(ds.PatientOrientation) == ["R", "F"] and "ImageOrientationPatient" not in ds
    (obj,) = _info(capsys, _store("RG3_UNCI.dcm"))
    assert obj["orientation_labels"] == {"left": "L", "right": "R", "top": "H", "bottom": "F"}
    assert obj["spacing_source"] == "none"
    # A copy flipped to L\F (as RG1 is stored) swaps the sides, nothing invented.
    flipped = _rewrite(_store("RG3_UNCI.dcm"), tmp_path / "leg.dcm", PatientOrientation=["L", "F"])
    (obj,) = _info(capsys, flipped)
    assert obj["orientation_labels"] == {"left": "R", "right": "L", "top": "H", "bottom": "F"}
    v = load([flipped]).volumes[0]
    assert v.projection and plane_name(v, Plane.AXIAL) == "Projection"


def test_mammogram_codes_and_imager_spacing(capsys, tmp_path):
    mg = _rewrite(_store("RG3_UNCI.dcm"), tmp_path / "mg.dcm", Modality="MG",
                  PatientOrientation=["A", "FR"], ImagerPixelSpacing=[0.07, 0.05])
    (obj,) = _info(capsys, mg)
    assert obj["orientation_labels"] == {"left": "P", "right": "A", "top": "HL", "bottom": "FR"}
    assert obj["spacing_source"] == "ImagerPixelSpacing"
    assert obj["spacing"][:2] == [0.05, 0.07]  # [x, y]: column spacing, row spacing
    both = _rewrite(mg, tmp_path / "mg_ps.dcm", PixelSpacing=[0.2, 0.2])
    (obj,) = _info(capsys, both)
    assert obj["spacing_source"] == "PixelSpacing" and obj["spacing"][:2] == [0.2, 0.2]


def test_no_orientation_and_no_spacing_means_no_labels_and_pixels(capsys, tmp_path):
    bare = _rewrite(_store("RG3_UNCI.dcm"), tmp_path / "bare.dcm", PatientOrientation=None)
    (obj,) = _info(capsys, bare)
    assert obj["orientation_labels"] is None and obj["spacing_source"] == "none"
    # RG1 declares PixelSpacing 0\0 (invalid): still no spacing, not a made-up 1 mm.
    (obj,) = _info(capsys, _store("RG1_UNCI.dcm"))
    assert obj["spacing_source"] == "none"
    assert obj["orientation_labels"] == {"left": "R", "right": "L", "top": "H", "bottom": "F"}
    # Codes outside L/R/A/P/H/F cannot be mirrored: no labels rather than wrong ones.
    assert projection_labels(("X", "F")) is None


def test_ultrasound_region_spacing_in_cm(capsys, tmp_path):
    src = Path(get_testdata_file("examples_rgb_color.dcm"))
    (obj,) = _info(capsys, src)
    assert obj["spacing_source"] == "none" and obj["orientation_labels"] is None
    ds = pydicom.dcmread(src)
    region = Dataset()
    region.RegionSpatialFormat = 1
    region.PhysicalUnitsXDirection = 3  # cm
    region.PhysicalUnitsYDirection = 3
    region.PhysicalDeltaX = 0.025
    region.PhysicalDeltaY = 0.03
    ds.SequenceOfUltrasoundRegions = Sequence([region])
    ds.save_as(tmp_path / "us.dcm")
    (obj,) = _info(capsys, tmp_path / "us.dcm")
    assert obj["spacing_source"] == "UltrasoundRegion"
    assert obj["spacing"][:2] == pytest.approx([0.25, 0.3])


def test_cross_sectional_labels_unchanged(capsys, mr_dicom_dir):
    (obj,) = _info(capsys, mr_dicom_dir)
    assert obj["orientation_labels"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert obj["spacing_source"] == "PixelSpacing" and obj["overlays"] == 0


def test_monochrome1_values_and_window_are_the_headers(capsys):
    path = _store("RG1_UNCI.dcm")
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    stored = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    (obj,) = _info(capsys, path)
    assert (obj["min"], obj["max"]) == (stored.min(), stored.max())
    assert (obj["window"]["center"], obj["window"]["width"]) == (float(ds.WindowCenter), float(ds.WindowWidth))
    v = load([path]).volumes[0]
    assert np.array_equal(v.array[0], stored)
    assert v.invert_display and not any("MONOCHROME1" in w for w in v.warnings)
    # The model input is the displayed image: lowest stored value shows white.
    img = slice_rgb(v, 0)
    lo, hi = np.unravel_index(np.argmin(stored), stored.shape), np.unravel_index(np.argmax(stored), stored.shape)
    assert img[lo][0] > img[hi][0]


def test_every_voi_window_is_kept():
    path = _store("MR-SIEMENS-DICOM-WithOverlays.dcm")
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    v = load([path]).volumes[0]
    assert [(w.center, w.width, w.name) for w in v.voi_windows] == [
        (float(c), float(w), str(n)) for c, w, n in zip(ds.WindowCenter, ds.WindowWidth, ds.WindowCenterWidthExplanation)
    ]
    assert len(v.voi_windows) == 2


def test_siemens_overlay_plane_is_read(capsys):
    path = _store("MR-SIEMENS-DICOM-WithOverlays.dcm")
    (obj,) = _info(capsys, path)
    assert obj["overlays"] == 1
    ds = pydicom.dcmread(path)
    v = load([path]).volumes[0]
    mask = overlay_mask(v.dicom_overlays, 0, v.array.shape[1:3])
    expected = ds.overlay_array(0x6000).astype(bool)
    assert mask is not None and mask.any()
    assert np.array_equal(mask[: expected.shape[0], : expected.shape[1]], expected)


def test_overlay_added_to_a_real_mr_slice(capsys, tmp_path, mr_dicom_dir):
    src = sorted(mr_dicom_dir.glob("*.dcm"))[0]
    ds = pydicom.dcmread(src)
    rows, cols = ds.Rows, ds.Columns
    bits = np.zeros((rows, cols), np.uint8)
    bits[100:120, 50:90] = 1
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", cols)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", pydicom.pixels.pack_bits(bits.ravel()))
    ds.save_as(tmp_path / "marked.dcm")
    (obj,) = _info(capsys, tmp_path / "marked.dcm")
    assert obj["overlays"] == 1
    v = load([tmp_path / "marked.dcm"]).volumes[0]
    assert np.array_equal(overlay_mask(v.dicom_overlays, 0, (rows, cols)), bits.astype(bool))


def test_malformed_overlay_does_not_stop_the_image(capsys, tmp_path):
    ds = pydicom.dcmread(_store("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    ds[0x60003000].value = b"\x01\x02"  # far too short for its declared rows x columns
    ds.save_as(tmp_path / "bad_overlay.dcm")
    (obj,) = _info(capsys, tmp_path / "bad_overlay.dcm")
    assert obj["overlays"] == 0 and obj["size"][:2] == [ds.Columns, ds.Rows]
    v = load([tmp_path / "bad_overlay.dcm"]).volumes[0]
    assert any(w.startswith("overlay 6000 ignored: OverlayData holds 2 bytes") for w in v.warnings)


# Linux carries a parent's peak RSS across fork+exec, so a small launcher forks the measured
# command and reports its own ru_maxrss (the same approach as tests/hostile/conftest.py).
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, file=sys.stderr)
"""


def test_overlay_declaring_gigapixels_is_refused_before_allocation(tmp_path):
    import os
    import subprocess
    import sys

    ds = pydicom.dcmread(_store("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    ds[0x60000010].value = 65535
    ds[0x60000011].value = 65535
    ds.add_new(0x60000015, "IS", 65535)
    path = tmp_path / "huge_overlay.dcm"
    ds.save_as(path)
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo))
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-m", "app", "info", str(path)],
                          capture_output=True, text=True, env=env, cwd=str(repo), timeout=120)
    rc, peak_kib = (int(x) for x in proc.stderr.strip().splitlines()[-1].split())
    assert rc == 0 and "Traceback" not in proc.stderr
    assert "overlays          0" in proc.stdout
    assert "overlay 6000 declares 65535 x 65535 x 65535" in proc.stdout
    assert peak_kib < 600 * 1024  # a generous ceiling; decoding it would need terabytes


def test_copied_real_file_keeps_its_geometry(capsys, tmp_path):
    shutil.copy(_store("RG3_UNCI.dcm"), tmp_path / "copy.dcm")
    (obj,) = _info(capsys, tmp_path)
    assert obj["modality"] == "CR" and obj["spacing_source"] == "none"


def test_monochrome1_evidence_crop_is_inverted_like_the_slice():
    from app.pipeline.evidence import crop_pixels

    v = load([_store("RG1_UNCI.dcm")]).volumes[0]
    img = slice_rgb(v, 0)
    rect = (100, 100, 164, 164)
    crop = crop_pixels(v.slice(0), v.window, rect, invert=v.invert_display)
    assert np.array_equal(crop, img[100:164, 100:164])


def test_enhanced_file_spacing_comes_from_its_functional_groups():
    path = Path(get_testdata_file("liver_1frame.dcm"))
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    fg = ds.get("SharedFunctionalGroupsSequence") or ds.PerFrameFunctionalGroupsSequence
    expected = [float(x) for x in fg[0].PixelMeasuresSequence[0].PixelSpacing]
    v = load([path]).volumes[0]
    assert v.spacing_source == "PixelSpacing" and not v.projection
    assert list(v.spacing[:2]) == pytest.approx(expected[::-1])


def test_ultrasound_frame_is_an_image_not_a_projection():
    # A real colour Doppler US frame (no patient frame): a section, so never called "Projection".
    v = load([Path(get_testdata_file("examples_rgb_color.dcm"))]).volumes[0]
    assert v.modality == "US" and v.projection
    assert plane_name(v, Plane.AXIAL) == "Image"
