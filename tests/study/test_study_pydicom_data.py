"""Every file of pydicom's test data and of pydicom-data loads or fails cleanly, and the
decoded values of compressed/uncompressed/big-endian twins agree."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from app.study.display import slice_rgb
from app.study.loader import load
from app.study.volume import LoadError, Volume

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def _data_store() -> Path:
    import data_store  # pydicom-data

    return Path(data_store.__file__).parent / "data"


def _all_files() -> list[Path]:
    files = [p for p in PYDICOM_FILES.rglob("*") if p.is_file()]
    files += [p for p in _data_store().iterdir() if p.is_file()]
    return sorted(files)


def _path(name: str) -> Path:
    for root in (_data_store(), PYDICOM_FILES):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(name)


def _vol(name: str) -> Volume:
    res = load(_path(name))
    assert res.errors == [] and len(res.volumes) == 1, res.errors
    return res.volumes[0]


def test_every_test_file_loads_or_gives_a_one_line_reason():
    files = _all_files()
    assert len(files) > 140
    loaded = failed = 0
    for f in files:
        res = load(f)  # must never raise
        assert res.volumes or res.errors, f
        for e in res.errors:
            assert isinstance(e, LoadError) and e.reason and "\n" not in e.reason, (f, e)
            assert "Traceback" not in e.reason
        for v in res.volumes:
            assert v.array.ndim in (3, 4) and v.array.size > 0
            assert np.linalg.det(v.direction) == pytest.approx(1.0, abs=1e-3), f
        loaded += bool(res.volumes)
        failed += not res.volumes
    assert loaded > 100  # the image files
    assert failed > 10  # RT plans, SRs, waveforms, JSON, truncated files...


@pytest.mark.parametrize(
    "a, b",
    [
        ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),  # JPEG 2000 lossless
        ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),  # JPEG-LS lossless, 10 frames
        ("emri_small_RLE.dcm", "emri_small.dcm"),  # RLE
        ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
        ("emri_small_big_endian.dcm", "emri_small.dcm"),  # explicit VR big endian
        ("MR_small_bigendian.dcm", "MR_small.dcm"),
        ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("MR_small_implicit.dcm", "MR_small.dcm"),
        ("693_J2KR.dcm", "693_UNCR.dcm"),  # CT, JPEG 2000 lossless
        ("RG3_J2KR.dcm", "RG3_UNCR.dcm"),  # MONOCHROME1 CR
        ("US1_J2KR.dcm", "US1_UNCR.dcm"),  # RGB
        ("OBXXXX1A_rle_2frame.dcm", "OBXXXX1A_2frame.dcm"),
        ("SC_rgb_expb_16bit_2frame.dcm", "SC_rgb_16bit_2frame.dcm"),
        ("liver_expb.dcm", "liver.dcm"),
    ],
)
def test_lossless_twins_decode_to_equal_values(a, b):
    va, vb = _vol(a), _vol(b)
    assert va.array.shape == vb.array.shape and va.array.dtype == vb.array.dtype
    assert np.array_equal(va.array, vb.array)


@pytest.mark.parametrize("name", ["JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "JPGExtended.dcm"])
def test_jpeg_lossless_and_extended_match_pydicom_decode(name):
    ds = pydicom.dcmread(_path(name))
    v = _vol(name)
    assert np.array_equal(v.array[0], ds.pixel_array * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0)))


def test_rescale_is_applied_and_matches_pydicom():
    v = _vol("MR2_UNCR.dcm")  # RescaleSlope 3.77: float32 modality values
    ds = pydicom.dcmread(_path("MR2_UNCR.dcm"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert v.array.dtype == np.float32
    np.testing.assert_allclose(v.array[0], expected, rtol=1e-6, atol=1e-3)
    ct = _vol("CT_small.dcm")
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    assert ct.array.dtype == np.int16
    assert np.array_equal(ct.array[0], ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept))


def test_monochrome1_keeps_stored_values_and_inverts_on_display():
    name = "RG1_UNCR.dcm"
    ds = pydicom.dcmread(_path(name))
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    v = _vol(name)
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    modality = ds.pixel_array * slope + intercept
    # Issue 13: the values (cursor readout, info min/max) and the window stay the header's.
    assert np.array_equal(v.array[0], modality)
    assert v.invert_display
    assert (v.window.center, v.window.width) == (float(ds.WindowCenter), float(ds.WindowWidth))
    shown = slice_rgb(v, 0)[..., 0]
    raw_low = np.unravel_index(np.argmin(modality), modality.shape)
    assert shown[raw_low] == shown.max()  # the lowest MONOCHROME1 value displays white


def test_palette_colour_becomes_rgb():
    v = _vol("OT-PAL-8-face.dcm")
    ds = pydicom.dcmread(_path("OT-PAL-8-face.dcm"), force=True)  # no file meta header
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    assert v.is_rgb and v.array.shape == (1, ds.Rows, ds.Columns, 3) and v.array.dtype == np.uint8
    indices = pydicom.pixels.pixel_array(str(_path("OT-PAL-8-face.dcm")), transfer_syntax_uid=pydicom.uid.ImplicitVRLittleEndian)
    ref = apply_color_lut(indices, ds)
    ref8 = (ref >> 8).astype(np.uint8) if ref.dtype == np.uint16 else ref
    assert np.array_equal(v.array[0], ref8)
    assert not np.array_equal(v.array[0, ..., 0], v.array[0, ..., 2])  # really coloured


def test_ybr_is_converted_to_rgb():
    rgb, ybr = _vol("SC_rgb.dcm"), _vol("SC_ybr_full_uncompressed.dcm")
    assert rgb.is_rgb and ybr.is_rgb
    diff = np.abs(rgb.array.astype(int) - ybr.array.astype(int))
    assert diff.max() <= 8 and diff.mean() < 1.0  # YCbCr round-trip rounding only


def test_multiframe_and_enhanced_ct():
    v = _vol("emri_small.dcm")
    assert v.frames == 10 and v.array.shape == (10, 64, 64)
    e = _vol("eCT_Supplemental.dcm")  # Enhanced CT: per-frame functional groups
    ds = pydicom.dcmread(_path("eCT_Supplemental.dcm"), stop_before_pixels=True)
    assert e.frames == int(ds.NumberOfFrames) == e.array.shape[0]
    positions = [
        [float(x) for x in ds.PerFrameFunctionalGroupsSequence[k].PlanePositionSequence[0].ImagePositionPatient]
        for k in range(e.frames)
    ]
    first = min(positions, key=lambda p: float(np.dot(e.direction[:, 2], p)))
    np.testing.assert_allclose(e.origin, first, atol=1e-4)
    rgb = _vol("color3d_jpeg_baseline.dcm")  # 120-frame JPEG baseline cine
    assert rgb.frames == 120 and rgb.array.shape == (120, 480, 640, 3)


def test_rt_dose_uses_grid_scaling():
    v = _vol("rtdose.dcm")
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("rtdose.dcm"))
    assert v.array.shape[0] == int(ds.NumberOfFrames)
    offsets = [float(x) for x in ds.GridFrameOffsetVector]
    assert v.spacing[2] == pytest.approx(abs(offsets[1] - offsets[0]))
    assert float(v.array.max()) == pytest.approx(float(ds.pixel_array.max()) * float(ds.DoseGridScaling), rel=1e-5)


def test_dicomdir_follows_its_references():
    res = load(PYDICOM_FILES / "dicomdirtests" / "DICOMDIR")
    assert res.volumes
    root = PYDICOM_FILES / "dicomdirtests"
    assert all(Path(f).is_relative_to(root) for v in res.volumes for f in v.source_files)
    ct5 = [v for v in res.volumes if any("CT5N" in f for f in v.source_files)]
    assert ct5 and ct5[0].array.shape[0] == 5  # a 5-slice series found only via the DICOMDIR


def test_missing_plugin_is_a_one_line_reason(monkeypatch, tmp_path):
    import pydicom.pixels.decoders.base as base

    decoder = base.get_decoder(pydicom.uid.JPEG2000Lossless)
    monkeypatch.setattr(type(decoder), "is_available", property(lambda self: False))
    res = load(_path("MR_small_jp2klossless.dcm"))
    assert not res.volumes and len(res.errors) == 1
    assert "JPEG 2000" in res.errors[0].reason and "decoder" in res.errors[0].reason
