"""The provisional first image and the parallel header scan (app/study/dicom/scan.py), on the
shared CT: the provisional image is its file's pixels, the final volume is byte for byte the
serial loader's (also with shuffled file names), cancel stops the scan, and hostile files in
the middle of the series neither break the first image nor lose their one-line reasons."""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.study.dicom import assemble, scan
from app.study.loader import load
from app.study.measurements import MeasureKind, Measurement, measure
from app.study.reformat import Plane, slice_geometry


def _file_values(path: str) -> np.ndarray:
    """Modality values of one file, straight from pydicom (not our reader)."""
    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _serial(paths, monkeypatch):
    """The loader as before the change: headers and pixels on one thread, no provisional image."""
    with monkeypatch.context() as m:
        m.setattr(scan, "MAX_WORKERS", 1)
        m.setattr(assemble, "MAX_WORKERS", 1)
        return load(paths)


def _with_provisional(paths):
    shown: list = []
    result = load(paths, on_provisional=shown.append)
    return result, shown


def _link_copy(src: Path, dst: Path, name=lambda p: p.name) -> Path:
    dst.mkdir()
    for p in sorted(src.iterdir()):
        os.link(p, dst / name(p)) if src.stat().st_dev == dst.stat().st_dev else shutil.copy(p, dst / name(p))
    return dst


def test_provisional_image_is_the_middle_file_and_its_pixels(ct_dicom_dir):
    files = sorted(str(p) for p in Path(ct_dicom_dir).iterdir())
    result, shown = _with_provisional([ct_dicom_dir])
    assert len(shown) == 1
    prov = shown[0]
    middle = files[len(files) // 2]
    assert prov.provisional and prov.num_slices == 1 and prov.source_files == [middle]
    assert np.array_equal(prov.array[0].astype(np.float64), _file_values(middle))
    final = result.volumes[0]
    assert not final.provisional and final.num_slices == len(files)
    # The same pixels sit in the sorted series, at that file's slice.
    k = final.source_files.index(middle)
    assert np.array_equal(final.array[k], prov.array[0])
    assert prov.array.base is not final.array and not np.shares_memory(prov.array, final.array)


def test_no_provisional_image_for_a_few_files(ct_dicom_dir):
    few = sorted(str(p) for p in Path(ct_dicom_dir).iterdir())[: scan.PROVISIONAL_MIN_FILES - 1]
    result, shown = _with_provisional(few)
    assert shown == [] and result.volumes[0].num_slices == len(few)


def _same_volume(a, b) -> None:
    assert a.array.dtype == b.array.dtype and a.array.shape == b.array.shape
    assert a.array.tobytes() == b.array.tobytes()
    assert a.spacing == b.spacing and a.origin == b.origin and np.array_equal(a.direction, b.direction)
    assert a.window == b.window and a.warnings == b.warnings


@pytest.mark.parametrize("names", ["original", "shuffled", "overflow"])
def test_final_volume_is_byte_identical_to_the_serial_loader(ct_dicom_dir, tmp_path, monkeypatch, names):
    folder = Path(ct_dicom_dir)
    if names == "shuffled":  # name order says nothing about slice order
        folder = _link_copy(folder, tmp_path / "shuffled",
                            lambda p: hashlib.sha1(p.name.encode()).hexdigest()[:10] + ".dcm")
    if names == "overflow":  # one slice past int16 after rescale: the array becomes float32 midway
        folder = _link_copy(folder, tmp_path / "overflow")
        hot = sorted(folder.iterdir())[30]
        ds = pydicom.dcmread(hot)
        hot.unlink()  # a hard link: write a new file, leave the shared data alone
        px = ds.pixel_array.copy()
        px[100:120, 100:120] = 65000
        ds.PixelData = px.tobytes()
        ds.save_as(hot)
    reference = _serial([ct_dicom_dir], monkeypatch).volumes[0]
    serial = _serial([folder], monkeypatch)
    parallel, shown = _with_provisional([folder])
    assert shown and parallel.errors == serial.errors == []
    _same_volume(parallel.volumes[0], serial.volumes[0])
    if names == "overflow":
        final = parallel.volumes[0]
        k = final.source_files.index(str(hot))
        assert final.array.dtype == np.float32 and np.all(final.array[k, 100:120, 100:120] == 65000 - 1024)
        rest = [j for j in range(final.num_slices) if j != k]
        assert np.array_equal(final.array[rest], reference.array[rest].astype(np.float32))
        return
    _same_volume(parallel.volumes[0], reference)
    assert parallel.volumes[0].source_files == serial.volumes[0].source_files
    if names == "shuffled":
        assert parallel.volumes[0].source_files != sorted(parallel.volumes[0].source_files)


def test_cancel_mid_scan_stops_reading_headers(ct_dicom_dir, monkeypatch):
    scanned: list[str] = []
    real = scan.scan_file
    monkeypatch.setattr(scan, "scan_file", lambda p: (scanned.append(p), real(p))[1])
    shown: list = []
    result = load([ct_dicom_dir], on_provisional=shown.append, cancel=lambda: len(scanned) >= 6)
    assert result.cancelled and result.volumes == []
    assert len(shown) == 1  # the provisional image came before the cancel
    n = len(os.listdir(ct_dicom_dir))
    assert len(scanned) < n  # the pool stopped: files queued after the cancel were never read
    assert not [t for t in threading.enumerate() if t.name.startswith("dicom-scan")]


def test_hostile_files_in_the_middle_keep_the_first_image_and_their_reasons(ct_dicom_dir, tmp_path):
    folder = _link_copy(Path(ct_dicom_dir), tmp_path / "series")
    names = sorted(p.name for p in folder.iterdir())
    # The middle by name will be: no pixel data, then a truncated slice, then a good one.
    truncated = folder / names[len(names) // 2]
    data = truncated.read_bytes()
    truncated.unlink()  # a hard link: write a new file, leave the shared data alone
    truncated.write_bytes(data[: len(data) - 4000])
    before = names[len(names) // 2 - 1]
    (folder / f"{before[:-4]}x.dcm").write_bytes(b"these are my notes, not an image\n" * 40)
    ds = pydicom.dcmread(folder / before, stop_before_pixels=True)
    for tag in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                "SamplesPerPixel", "PhotometricInterpretation"):
        delattr(ds, tag)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(folder / f"{before[:-4]}y.dcm", enforce_file_format=True)

    result, shown = _with_provisional([folder])
    listing = sorted(str(p) for p in folder.iterdir())
    good = listing[len(listing) // 2 + 2]
    assert [v.source_files for v in shown] == [[good]]
    assert np.array_equal(shown[0].array[0].astype(np.float64), _file_values(good))
    reasons = {Path(e.path).name: e.reason for e in result.errors}
    assert len(result.errors) == 3  # each bad file once, none twice for having been tried first
    assert reasons[truncated.name].startswith("truncated pixel data")
    assert reasons[f"{before[:-4]}x.dcm"] == "not a DICOM file"
    assert reasons[f"{before[:-4]}y.dcm"].startswith("no image data")
    assert [v.num_slices for v in result.volumes] == [len(names) - 1]


def test_a_provisional_image_cannot_be_measured_or_asked_about(ct_dicom_dir):
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from app.pipeline.types import PipelineError

    _, shown = _with_provisional([ct_dicom_dir])
    prov = shown[0]
    geom = slice_geometry(prov, Plane.AXIAL)
    m = Measurement(MeasureKind.RECTANGLE, "s", Plane.AXIAL, 0, ((10.0, 10.0), (60.0, 60.0)))
    with pytest.raises(ValueError, match="provisional"):
        measure(m, prov, geom)
    with pytest.raises(PipelineError, match="provisional"):
        CarePipeline(load_profile("tiny")).prepare(prov, 0, "Is there a mass?")
    prov.provisional = False  # the same pixels, not provisional: both work (the refusal is the flag)
    assert measure(m, prov, geom).mean is not None
