"""The slice view on real radiographs and an MR with an overlay plane: labels, spacing
readout and scale bar are never invented, MONOCHROME1 is inverted only on screen, the
file's VOI windows cycle with V and its overlay plane toggles with O."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PySide6.QtCore import QPointF, Qt

from app.study.edge_labels import view_edge_labels
from app.study.loader import load
from app.ui.slice_renderer import DICOM_OVERLAY_COLOR


def _store(name: str) -> Path:
    import data_store  # pydicom-data

    return Path(data_store.__file__).parent / "data" / name


def _vol(path):
    result = load([path])
    assert result.volumes, result.errors
    return result.volumes[0]


def _widget_point(view, col: int, row: int) -> QPointF:
    return view.image_to_widget(col + 0.5, row + 0.5)


def test_radiograph_without_calibration_shows_pixels(qtbot, view):
    v = _vol(_store("RG3_UNCI.dcm"))  # CR, PatientOrientation R\F, no spacing
    view.set_volume(v)
    labels = view_edge_labels(v, view.geometry_)
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("L", "R", "H", "F")
    assert view.spacing_text() == "Pixels (no calibration)"
    assert view.scale_bar() == (0.0, 0.0)
    info = view.cursor_info_at(_widget_point(view, 10, 20))
    assert info is not None and info.lps is None and info.ijk[:2] == (10, 20)
    view.grab()  # paints without error


def test_imager_spacing_says_at_detector(qtbot, view, tmp_path):
    ds = pydicom.dcmread(_store("RG3_UNCI.dcm"))
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.save_as(tmp_path / "dx.dcm")
    v = _vol(tmp_path / "dx.dcm")
    view.set_volume(v)
    assert view.spacing_text() == "0.20 x 0.20 mm at detector"
    mm, px = view.scale_bar()
    assert mm > 0 and px > 0


def test_no_patient_orientation_no_labels(qtbot, view, tmp_path):
    ds = pydicom.dcmread(_store("RG3_UNCI.dcm"))
    del ds.PatientOrientation
    ds.save_as(tmp_path / "bare.dcm")
    v = _vol(tmp_path / "bare.dcm")
    view.set_volume(v)
    assert view_edge_labels(v, view.geometry_) is None
    view.grab()


def test_monochrome1_readout_is_stored_value_and_display_inverted(qtbot, view):
    path = _store("RG1_UNCI.dcm")
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array
    v = _vol(path)
    view.set_volume(v)
    assert (view.window.center, view.window.width) == (float(ds.WindowCenter), float(ds.WindowWidth))
    lo = np.unravel_index(np.argmin(stored), stored.shape)
    hi = np.unravel_index(np.argmax(stored), stored.shape)
    info = view.cursor_info_at(_widget_point(view, int(lo[1]), int(lo[0])))
    assert info.value == float(stored[lo])  # the header's value, not an inverted one
    frame = view.current_frame().array
    assert int(frame[lo]) > int(frame[hi])  # lowest value is brightest on screen


def test_voi_windows_cycle_and_overlay_toggles(qtbot, view):
    path = _store("MR-SIEMENS-DICOM-WithOverlays.dcm")
    ds = pydicom.dcmread(path)
    v = _vol(path)
    view.set_volume(v)
    first = (float(ds.WindowCenter[0]), float(ds.WindowWidth[0]))
    second = (float(ds.WindowCenter[1]), float(ds.WindowWidth[1]))
    assert (view.window.center, view.window.width) == first
    qtbot.keyClick(view, Qt.Key.Key_V)
    assert (view.window.center, view.window.width) == second
    qtbot.keyClick(view, Qt.Key.Key_V)
    assert (view.window.center, view.window.width) == first

    bits = ds.overlay_array(0x6000).astype(bool)
    r, c = (int(x[0]) for x in np.nonzero(bits))
    frame = view.current_frame().array
    assert tuple(int(x) for x in frame[r, c]) == DICOM_OVERLAY_COLOR
    qtbot.keyClick(view, Qt.Key.Key_O)
    assert not view.show_dicom_overlays
    frame = view.current_frame().array
    assert tuple(int(x) for x in np.atleast_1d(frame[r, c])[:3]) != DICOM_OVERLAY_COLOR
