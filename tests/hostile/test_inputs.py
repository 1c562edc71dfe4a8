"""Hostile inputs (issue 14, item 1), through the real CLI in a subprocess.

Each case writes its hostile file into tmp_path (from the shared MR/CT or pydicom's test
files), runs ``care-viewer`` and asserts the exit code, a one-line message naming the file
and the reason, no traceback, and where memory is the point a generous peak-RSS ceiling
measured with os.wait4 (ceilings, not benchmarks).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.study.limits import default_max_pixels, megapixels
from tests.hostile.conftest import assert_one_line_error, run_cli

# Far below what decoding the hostile sizes would take (6-10 GB), far above a normal run.
MEMORY_CEILING_MB = 600
# Writing the hostile files makes pydicom warn about the invalid values on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")


@pytest.fixture
def mr_copy(tmp_path, mr_dicom_dir) -> Path:
    """A writable copy of the shared MR series (25 single-frame files)."""
    dst = tmp_path / "mr"
    shutil.copytree(mr_dicom_dir, dst)
    return dst


def _edit(path: Path, **values) -> None:
    ds = pydicom.dcmread(path)
    for k, v in values.items():
        setattr(ds, k, v)
    ds.save_as(path)


def _info_json(res) -> list[dict]:
    return json.loads(res.stdout, parse_constant=_no_constant)


def _no_constant(name: str):
    raise AssertionError(f"non-strict JSON constant {name} in the output")


def _no_traceback(res) -> None:
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr


# ----------------------------------------------------------------------- rescale ----
def test_non_finite_rescale_skips_only_that_file(mr_copy):
    bad = mr_copy / "IM0003.dcm"
    _edit(bad, RescaleSlope="NaN")
    _edit(mr_copy / "IM0007.dcm", RescaleIntercept="inf")
    res = run_cli(["info", mr_copy, "--json"])
    assert res.rc == 0, res.stderr
    _no_traceback(res)
    (series,) = _info_json(res)
    assert series["size"][2] == 23  # the other 23 slices loaded
    reasons = {Path(e["path"]).name: e["reason"] for e in series["errors"]}
    assert "non-finite RescaleSlope/RescaleIntercept" in reasons["IM0003.dcm"]
    assert "non-finite RescaleSlope/RescaleIntercept" in reasons["IM0007.dcm"]
    assert np.isfinite([series["min"], series["max"], series["mean"]]).all()
    # `ask` loads the rest too and names the skipped file (stopped here by a box outside the slice).
    res = run_cli(["ask", mr_copy, "-q", "x", "--box", "500,500,600,600", "--profile", "tiny"])
    assert res.rc == 1
    assert_one_line_error(res, f"note: skipped {bad}: non-finite RescaleSlope")


# ----------------------------------------------------------------- declared sizes ----
@pytest.fixture
def frame_bomb(tmp_path) -> Path:
    """A ~90 kB RLE file declaring 100 million frames."""
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    ds.compress(pydicom.uid.RLELossless)
    ds.NumberOfFrames = 100_000_000
    path = tmp_path / "bomb.dcm"
    ds.save_as(path)
    assert path.stat().st_size < 1_000_000
    return path


def test_frame_bomb_is_refused_by_the_pixel_cap(frame_bomb):
    # The default cap follows this machine's RAM (app/study/limits.py): 409,600 megapixels
    # declared are over it on any machine below 6.5 TB.
    res = run_cli(["info", frame_bomb], env={"CARE_MAX_PIXELS": ""})
    assert res.rc == 2
    cap = f"{megapixels(default_max_pixels())} limit"
    line = assert_one_line_error(res, str(frame_bomb), "100000000 = 409,600 megapixels", cap,
                                 "RAM at 4 bytes per voxel", "CARE_MAX_PIXELS=<n>M raises it")
    assert "limit" in line
    assert res.peak_rss_mb < MEMORY_CEILING_MB


def test_frame_bomb_is_refused_by_its_real_content_even_under_a_huge_cap(frame_bomb):
    res = run_cli(["info", frame_bomb], env={"CARE_MAX_PIXELS": "100000G"})
    assert res.rc == 2
    assert_one_line_error(res, str(frame_bomb), "declares 100000000 frames", "too small")
    assert res.peak_rss_mb < MEMORY_CEILING_MB


def test_more_frames_than_fragments_is_refused(tmp_path):
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("MR_small.dcm"))
    ds.compress(pydicom.uid.RLELossless)
    ds.NumberOfFrames = 500  # 64x64x500 fits the cap and the file size; only one fragment exists
    path = tmp_path / "frames.dcm"
    ds.save_as(path)
    res = run_cli(["info", path])
    assert res.rc == 2
    assert_one_line_error(res, str(path), "declares 500 frames", "1 fragment")


@pytest.fixture
def png_bomb(tmp_path) -> Path:
    import cv2

    ok, enc = cv2.imencode(".png", np.zeros((20000, 20000), np.uint8))
    assert ok
    path = tmp_path / "huge.png"
    enc.tofile(str(path))
    assert path.stat().st_size < 2_000_000
    return path


def test_png_declaring_400_megapixels_is_refused_before_decoding(png_bomb):
    # 400 MP fit the RAM-based default of a >= 6.4 GB machine; under the old 200 MP cap
    # (set explicitly) they must be refused before a pixel is decoded.
    res = run_cli(["info", png_bomb], env={"CARE_MAX_PIXELS": "200M"})
    assert res.rc == 2
    assert_one_line_error(res, str(png_bomb), "20000 x 20000", "400 megapixels", "200 megapixels",
                          "set by CARE_MAX_PIXELS")
    assert res.peak_rss_mb < MEMORY_CEILING_MB


def test_tiny_png_declaring_billions_of_pixels_is_refused_under_the_default_cap(tmp_path):
    # A 45-byte PNG whose header declares 2^31-1 x 2^31-1 pixels: over any RAM-based cap.
    import zlib

    ihdr = struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path = tmp_path / "tiny.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    res = run_cli(["info", path], env={"CARE_MAX_PIXELS": ""})
    assert res.rc == 2
    assert_one_line_error(res, str(path), "2147483647 x 2147483647", "megapixels limit", "CARE_MAX_PIXELS")
    assert res.peak_rss_mb < MEMORY_CEILING_MB


def test_pixel_cap_is_configurable(tmp_path):
    import cv2

    path = tmp_path / "medium.jpg"
    cv2.imencode(".jpg", np.full((1500, 2000), 80, np.uint8))[1].tofile(str(path))
    assert run_cli(["info", path]).rc == 0
    res = run_cli(["info", path], env={"CARE_MAX_PIXELS": "1M"})
    assert res.rc == 2
    assert_one_line_error(res, str(path), "2000 x 1500", "1 megapixels")


def test_series_over_the_cap_is_refused_naming_its_folder(mr_copy):
    res = run_cli(["info", mr_copy], env={"CARE_MAX_PIXELS": "1M"})  # 256x256x25 = 1.6 MP
    assert res.rc == 2
    assert_one_line_error(res, str(mr_copy), "series declares 256 x 256 x 25")


# ----------------------------------------------------------------- special files ----
def test_fifo_and_socket_in_a_study_folder_do_not_hang_the_walk(mr_copy):
    fifo = mr_copy / "pipe.dcm"
    os.mkfifo(fifo)
    sock_path = mr_copy / "sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(sock_path))
        res = run_cli(["info", mr_copy, "--json"], timeout=60)
    finally:
        sock.close()
    assert res.rc == 0, res.stderr
    assert res.seconds < 60
    (series,) = _info_json(res)
    assert series["size"][2] == 25
    reasons = {Path(e["path"]).name: e["reason"] for e in series["errors"]}
    assert "FIFO" in reasons["pipe.dcm"] and "not a regular file" in reasons["pipe.dcm"]
    assert "socket" in reasons["sock"]


def test_fifo_named_directly_is_refused(tmp_path):
    fifo = tmp_path / "study.nii"
    os.mkfifo(fifo)
    res = run_cli(["info", fifo], timeout=60)
    assert res.rc == 2
    _no_traceback(res)
    assert f"{fifo}: not a regular file (FIFO" in res.stderr


# ------------------------------------------------------------------ cut NIfTI ----
def _write_nifti(path: Path) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.arange(40 * 64 * 64, dtype=np.int16).reshape(40, 64, 64))
    sitk.WriteImage(img, str(path))


@pytest.mark.parametrize("name", ["cut.nii", "cut.nii.gz"])
def test_nifti_cut_in_half_is_refused(tmp_path, name):
    whole = tmp_path / ("whole" + name[3:])
    _write_nifti(whole)
    data = whole.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[: len(data) // 2])
    assert run_cli(["info", whole]).rc == 0
    res = run_cli(["info", cut])
    assert res.rc == 2
    assert_one_line_error(res, str(cut), "truncated")


# ------------------------------------------------------------------- geometry ----
def test_nifti_with_nan_zero_negative_spacing_says_what_it_assumed(tmp_path):
    path = tmp_path / "spacing.nii"
    _write_nifti(path)
    hdr = bytearray(path.read_bytes())
    struct.pack_into("<3f", hdr, 80, float("nan"), 0.0, -2.0)  # pixdim[1..3]
    struct.pack_into("<hh", hdr, 252, 0, 0)  # qform_code, sform_code: use pixdim
    path.write_bytes(bytes(hdr))
    res = run_cli(["info", path])
    _no_traceback(res)
    if res.rc == 2:  # ITK itself may refuse such a header: then with a one-line reason
        assert_one_line_error(res, str(path))
        return
    assert res.rc == 0, res.stderr
    assert "spacing" in res.stdout and "assumed" in res.stdout
    assert "nan" not in res.stdout.split("spacing mm", 1)[1].splitlines()[0].lower()


def test_dicom_nan_position_and_orientation_skip_the_file(mr_copy):
    _edit(mr_copy / "IM0004.dcm", ImagePositionPatient=["NaN", "0", "0"])
    _edit(mr_copy / "IM0005.dcm", ImageOrientationPatient=["1", "0", "0", "1", "0", "0"])
    res = run_cli(["info", mr_copy, "--json"])
    assert res.rc == 0, res.stderr
    (series,) = _info_json(res)
    assert series["size"][2] == 23 and np.isfinite(series["origin"]).all()
    reasons = {Path(e["path"]).name: e["reason"] for e in series["errors"]}
    assert "non-finite ImagePositionPatient" in reasons["IM0004.dcm"]
    assert "degenerate ImageOrientationPatient" in reasons["IM0005.dcm"]


def test_dicom_invalid_pixel_spacing_and_window_are_reported(mr_copy):
    for f in sorted(mr_copy.iterdir()):
        _edit(f, PixelSpacing=["NaN", "-1"], WindowWidth="NaN", WindowCenter="40")
    res = run_cli(["info", mr_copy])
    assert res.rc == 0, res.stderr
    warn = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("warnings"))
    assert "invalid PixelSpacing" in warn and "spacing assumed (1, 1," in warn
    assert "invalid file window" in warn and "automatic window" in warn
    window = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("window"))
    assert "(auto percentile)" in window and "nan" not in window.lower()


# ------------------------------------------------------------------ usage errors ----
@pytest.mark.parametrize("window", ["nan,nan", "40,inf", "inf,400", "40,-5"])
def test_non_finite_window_is_a_usage_error(mr_dicom_dir, window):
    res = run_cli(["ask", mr_dicom_dir, "-q", "Is there a lesion?", "--window", window, "--profile", "tiny"])
    assert res.rc == 1
    assert_one_line_error(res, "--window", window)


@pytest.mark.parametrize("box", ["inf,0,10,10", "0,0,nan,10", "1e400,0,2e400,5"])
@pytest.mark.parametrize("command", ["ask", "segment"])
def test_non_finite_box_is_a_usage_error(mr_dicom_dir, tmp_path, box, command):
    extra = ["-q", "x"] if command == "ask" else ["--slice", "3", "--out", tmp_path / "m.png"]
    res = run_cli([command, mr_dicom_dir, *extra, "--box", box, "--profile", "tiny"])
    assert res.rc == 1
    assert_one_line_error(res, "--box", box, "finite")


@pytest.mark.parametrize("command", ["ask", "segment"])
def test_box_outside_the_image_is_a_usage_error(mr_dicom_dir, tmp_path, command):
    extra = ["-q", "x"] if command == "ask" else ["--slice", "3", "--out", tmp_path / "m.png"]
    res = run_cli([command, mr_dicom_dir, *extra, "--box", "300,300,400,400", "--profile", "tiny"])
    assert res.rc == 1
    assert_one_line_error(res, "--box 300,300,400,400", "outside the 256x256 slice")
    assert not (tmp_path / "m.png").exists()


def test_box_crossing_the_edge_is_clipped_with_a_warning():
    from app.cli.ask_cmd import fit_box

    assert fit_box((10, 10, 50, 50), "10,10,50,50", 256, 256) == ((10, 10, 50, 50), None)
    box, note = fit_box((200, -5, 300, 40), "200,-5,300,40", 256, 256)
    assert box == (200, 0, 256, 40) and "clipped to 200,0,256,40" in note


# ------------------------------------------------------------ terminal escapes ----
ESCAPES = "\x1b]0;owned\x07\x1b[31mRED\x9b2J\x00\r"


def test_escape_codes_in_dicom_text_are_neutralised(mr_copy):
    for f in sorted(mr_copy.iterdir()):
        _edit(f, SeriesDescription="brain" + ESCAPES)
    for args in (["info", mr_copy], ["info", mr_copy, "--json"]):
        res = run_cli(args)
        assert res.rc == 0
        for ch in "\x1b\x07\x9b\x00\r":
            assert ch not in res.stdout and ch not in res.stderr
        assert "\\u001b]0;owned" in res.stdout
    assert _info_json(res)[0]["description"].startswith("brain\x1b]0;owned")  # JSON keeps the value


def test_printable_keeps_newlines_and_tabs():
    from app.audit.present.formatting import printable

    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("x\x1b[2Jy\x85") == "x\\u001b[2Jy\\u0085"


# ------------------------------------- a real run on hostile-but-loadable input ----
def test_ask_with_nan_file_window_and_escaped_question_writes_strict_json(mr_copy, tmp_path, tiny_models_dir):
    for f in sorted(mr_copy.iterdir()):
        _edit(f, WindowWidth="NaN", WindowCenter="NaN")
    out = tmp_path / "run"
    question = "Is there a lesion?\x1b[2J\x1b]0;owned\x07"
    res = run_cli(["ask", mr_copy, "-q", question, "--profile", "tiny", "--out", out], timeout=300)
    _no_traceback(res)
    assert res.rc in (0, 1), res.stderr  # the tiny model may fail the run; the record must be sound
    for ch in "\x1b\x07":
        assert ch not in res.stdout and ch not in res.stderr
    record = json.loads((out / "run.json").read_text(encoding="utf-8"), parse_constant=_no_constant)
    assert record["question"] == question
    window = json.dumps(record, allow_nan=False)
    assert '"name": "file"' not in window  # the NaN file window was not used
    import cv2

    slice_png = cv2.imread(str(out / "slice.png"), cv2.IMREAD_GRAYSCALE)
    assert slice_png is not None and slice_png.max() > 0  # never an all-black model input
    hist = run_cli(["history"])
    assert hist.rc == 0 and "\x1b" not in hist.stdout and "Is there a lesion?\\u001b[2J" in hist.stdout


def test_run_record_json_is_strict_with_non_finite_floats(tmp_path):
    from app.pipeline.record import RunRecord
    from app.pipeline.run_io import write_run

    rec = RunRecord(question="q", app_version="0.1.0", profile="tiny", tau=float("nan"))
    rec.input.window_width = float("inf") if hasattr(rec.input, "window_width") else None
    data = json.loads(json.dumps(rec.to_dict(), allow_nan=False), parse_constant=_no_constant)
    assert data["tau"] is None
    path = write_run(rec, tmp_path / "run")
    json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)


# ------------------------------------------------------------------------- GUI ----
@pytest.fixture
def gui_window(qtbot):
    from app.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    yield w
    w.cancel_loading()


def test_gui_shows_the_same_one_line_reasons_and_assumptions(qtbot, gui_window, mr_copy, png_bomb, monkeypatch):
    w = gui_window
    monkeypatch.setenv("CARE_MAX_PIXELS", "200M")  # the 400 MP bomb is under the RAM-based default
    _edit(mr_copy / "IM0003.dcm", RescaleSlope="NaN")
    for f in sorted(mr_copy.iterdir()):
        if f.name != "IM0003.dcm":
            _edit(f, PixelSpacing=["NaN", "0"])
    os.mkfifo(mr_copy / "pipe.dcm")
    w.open_paths([mr_copy])
    qtbot.waitUntil(lambda: not w.is_loading, timeout=60000)
    assert w.current_volume is not None and w.current_volume.num_slices == 24
    lines = [w._error_dialog.list.item(i).text() for i in range(w._error_dialog.list.count())]
    assert f"{mr_copy / 'IM0003.dcm'}: non-finite RescaleSlope/RescaleIntercept (nan, 0)" in lines
    assert any(ln.startswith(f"{mr_copy / 'pipe.dcm'}: not a regular file (FIFO") for ln in lines)
    status = w.statusBar().currentMessage()
    assert "invalid PixelSpacing (nan, 0) ignored" in status

    failures: list[str] = []
    w.load_failed.connect(failures.append)
    w.open_paths([png_bomb])
    qtbot.waitUntil(lambda: not w.is_loading, timeout=60000)
    assert failures and str(png_bomb) in failures[0] and "200 megapixels" in failures[0]
