"""The Measure tools in the real window on real files: keys and mouse, the numbers in the
panel, what is drawn on the image (pixels), and the measurements kept with the study."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from app.study.measurements import MeasureKind
from tests.ui.ui_helpers import grab_rgb

SX = 0.570312
SLICE = 33
NO = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton


def _open(qtbot, w, path) -> None:
    with qtbot.waitSignal(w.series_loaded, timeout=120_000):
        w.open_paths([path])
    qtbot.waitUntil(lambda: not w.is_loading, timeout=60_000)


def _align(view, zoom: float = 1.0) -> None:
    """Zoom so one voxel is ``zoom`` screen px, with the image's corner on a whole pixel:
    integer widget points are then exact image coordinates."""
    view.set_zoom(zoom)
    r = view.image_rect()
    view.pan_by(round(r.left()) - r.left(), round(r.top()) - r.top())


def _at(view, col: float, row: float) -> QPoint:
    p = view.image_to_widget(col, row)
    q = QPoint(round(p.x()), round(p.y()))
    assert abs(q.x() - p.x()) < 1e-6 and abs(q.y() - p.y()) < 1e-6, "not on a whole screen pixel"
    return q


def _drag(view, a: QPoint, b: QPoint) -> None:
    QTest.mousePress(view, LEFT, NO, a)
    QTest.mouseMove(view, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
    QTest.mouseMove(view, b)
    QTest.mouseRelease(view, LEFT, NO, b)


def _orange(rgb: np.ndarray, p: QPoint, r: int = 1) -> bool:
    """A selected measurement's colour (255, 170, 40) at or next to ``p``."""
    patch = rgb[p.y() - r:p.y() + r + 1, p.x() - r:p.x() + r + 1].reshape(-1, 3).astype(int)
    return bool(((patch[:, 0] > 200) & (patch[:, 1] > 120) & (patch[:, 1] < 210) & (patch[:, 2] < 110)).any())


@pytest.fixture
def ct_window(qtbot, main_window, ct_dicom_dir):
    _open(qtbot, main_window, ct_dicom_dir)
    main_window.view.set_slice(SLICE)
    _align(main_window.view)
    return main_window


def test_length_drawn_with_m_and_a_drag_is_pixels_times_spacing_and_drawn_on_the_image(qtbot, ct_window):
    w, view, mc = ct_window, ct_window.view, ct_window.measure
    a, b = _at(view, 100, 200), _at(view, 300, 200)
    mid = QPoint((a.x() + b.x()) // 2, a.y())
    assert not _orange(grab_rgb(view), mid)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_M)
    assert mc.tool.kind is MeasureKind.LENGTH and mc.actions[MeasureKind.LENGTH].isChecked()
    _drag(view, a, b)
    (m,) = mc.measurements()
    # The view maps through its (identity) view transform in mm: equal to ~1e-13 px.
    assert np.allclose(m.points, ((100.0, 200.0), (300.0, 200.0)), atol=1e-9) and m.slice_index == SLICE
    assert mc.panel.rows()[0][1:4] == ["Length", f"{200 * SX:.2f} mm", f"axial slice {SLICE + 1}"]
    assert _orange(grab_rgb(view), mid)  # the new, selected line is drawn over the image

    # Esc cancels a drawing in progress; a second Esc turns the tool off.
    QTest.mousePress(view, LEFT, NO, _at(view, 50, 50))
    QTest.mouseMove(view, _at(view, 80, 90))
    assert mc.tool.preview is not None
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert mc.tool.preview is None
    QTest.mouseRelease(view, LEFT, NO, _at(view, 80, 90))
    assert len(mc.measurements()) == 1 and mc.tool.kind is MeasureKind.LENGTH
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert mc.tool.kind is None and not mc.actions[MeasureKind.LENGTH].isChecked()

    # Delete removes the selected measurement, and it is no longer drawn.
    assert mc.selected == m.mid
    QTest.keyClick(view, Qt.Key.Key_Delete)
    assert mc.measurements() == [] and mc.panel.rows() == []
    assert not _orange(grab_rgb(view), mid)


def test_angle_takes_three_clicks_and_a_point_can_be_dragged(qtbot, ct_window):
    view, mc = ct_window.view, ct_window.measure
    QTest.keyClick(view, Qt.Key.Key_A)
    for c, r in ((100, 300), (100, 200), (250, 200)):  # arm end, vertex, arm end
        QTest.mouseClick(view, LEFT, NO, _at(view, c, r))
    (m,) = mc.measurements()
    assert m.kind is MeasureKind.ANGLE and mc.panel.rows()[0][2] == "90.0\u00b0"
    # Drag the first arm's end onto the other arm's line: the angle edits to 45 degrees.
    QTest.mousePress(view, LEFT, NO, _at(view, 100, 300))
    QTest.mouseMove(view, _at(view, 150, 260))
    QTest.mouseMove(view, _at(view, 200, 300))
    QTest.mouseRelease(view, LEFT, NO, _at(view, 200, 300))
    (m2,) = mc.measurements()
    assert m2.mid == m.mid and m2.points[0] == (200.0, 300.0)
    assert mc.results[m.mid].angle_deg == pytest.approx(45.0)


def test_rectangle_and_ellipse_rois_give_hu_statistics_of_the_pixels_inside(qtbot, ct_window):
    w, view, mc = ct_window, ct_window.view, ct_window.measure
    img = w.current_volume.array[SLICE].astype(np.float64)
    QTest.keyClick(view, Qt.Key.Key_Q)
    _drag(view, _at(view, 10, 10), _at(view, 40, 30))  # air outside the patient
    QTest.keyClick(view, Qt.Key.Key_E)
    _drag(view, _at(view, 250, 282), _at(view, 270, 298))  # mediastinal soft tissue
    rect, ell = mc.measurements()
    r = mc.results[rect.mid]
    px = img[10:30, 10:40]
    assert (r.n_pixels, r.mean, r.sd, r.min, r.max) == pytest.approx((600, px.mean(), px.std(), px.min(), px.max()))
    assert r.mean < -900 and r.area == pytest.approx(600 * SX * SX)
    yy, xx = np.mgrid[0:512, 0:512] + 0.5
    inside = img[((xx - 260) / 10) ** 2 + ((yy - 290) / 8) ** 2 <= 1]
    e = mc.results[ell.mid]
    assert e.n_pixels == inside.size and e.mean == pytest.approx(inside.mean()) and e.mean > -200
    rows = mc.panel.rows()
    assert [row[1] for row in rows] == ["Rectangle ROI", "Ellipse ROI"]
    assert rows[0][2] == "\n".join(r.lines) and rows[0][2].startswith(f"mean {r.mean:.1f} HU  SD")
    assert rows[0][2].endswith(f"({px.size} px)")


def test_coronal_measurement_uses_the_5mm_rows(qtbot, ct_window):
    view, mc = ct_window.view, ct_window.measure
    QTest.keyClick(view, Qt.Key.Key_2)
    assert view.plane.value == "coronal" and view.geometry_.pixel_spacing == pytest.approx((SX, 5.0))
    QTest.keyClick(view, Qt.Key.Key_M)
    c = view.rect().center()
    _drag(view, QPoint(c.x(), c.y() - 60), QPoint(c.x(), c.y() + 60))  # 120 screen px straight down
    (m,) = mc.measurements()
    assert m.plane.value == "coronal"
    rows = m.points[1][1] - m.points[0][1]
    assert rows == pytest.approx(120 / (view._scale * 5.0))  # screen px -> 5 mm rows
    assert mc.results[m.mid].length == pytest.approx(rows * 5.0)
    assert mc.results[m.mid].length == pytest.approx(120 / view._scale)  # the screen shows mm isotropically


def test_measurements_stay_with_the_study_across_slices_series_and_reopening(qtbot, ct_window, mr_dicom_dir,
                                                                             ct_dicom_dir):
    w, view, mc = ct_window, ct_window.view, ct_window.measure
    ct = w.current_volume
    QTest.keyClick(view, Qt.Key.Key_M)
    a, b = _at(view, 100, 200), _at(view, 300, 200)
    mid = QPoint((a.x() + b.x()) // 2, a.y())
    _drag(view, a, b)
    (m,) = mc.measurements()
    view.set_slice(10)
    assert not _orange(grab_rgb(view), mid) and len(mc.panel.rows()) == 1  # drawn on its slice only
    view.set_slice(SLICE)
    assert _orange(grab_rgb(view), mid)

    # Another series of the same study: the measurement stays listed, drawn on its own series.
    other = dataclasses.replace(ct, series_uid=ct.series_uid + ".9", description="second series")
    w._volumes.append(other)
    w.show_volume(other)
    view.set_slice(SLICE)
    _align(view)
    assert mc.panel.rows()[0][3] == f"axial slice {SLICE + 1} \u00b7 {ct.description}"
    assert not _orange(grab_rgb(view), mid)
    # Selecting it in the panel goes back to its series, plane and slice.
    view.set_slice(5)
    mc.dock.raise_()
    qtbot.waitUntil(mc.panel.tree.isVisible)
    tree = mc.panel.tree
    qtbot.mouseClick(tree.viewport(), LEFT, pos=tree.visualItemRect(tree.topLevelItem(0)).center())
    assert w.current_volume is ct and view.slice_index == SLICE and mc.selected == m.mid

    # Another study: its own (empty) list; opening the CT again restores the measurement.
    _open(qtbot, w, mr_dicom_dir)
    assert mc.panel.rows() == [] and mc.measurements() == []
    _open(qtbot, w, ct_dicom_dir)
    assert [x.mid for x in mc.measurements()] == [m.mid]
    assert mc.panel.rows()[0][2] == f"{200 * SX:.2f} mm"


def test_uncalibrated_ultrasound_measures_in_pixels(qtbot, main_window):
    from pydicom.data import get_testdata_file

    w = main_window
    _open(qtbot, w, get_testdata_file("examples_rgb_color.dcm"))
    view, mc = w.view, w.measure
    _align(view, 2.0)
    QTest.keyClick(view, Qt.Key.Key_M)
    _drag(view, _at(view, 10, 20), _at(view, 40, 60))
    value = mc.panel.rows()[0][2]
    assert value == "50.00 px" and "mm" not in value
    QTest.keyClick(view, Qt.Key.Key_Q)
    _drag(view, _at(view, 100, 100), _at(view, 120, 110))
    roi = mc.panel.rows()[1][2]
    assert "luma" in roi and "area 200 px\u00b2" in roi and "mm" not in roi


def test_tools_are_in_the_shortcuts_dialog_without_clashes(qtbot, main_window):
    from app.ui.dialogs import collect_shortcuts

    rows = collect_shortcuts(main_window)
    keys = {(r.keys, r.action) for r in rows}
    for k, name in (("M", "Measure Length"), ("A", "Measure Angle"), ("Q", "Measure Rectangle ROI"),
                    ("E", "Measure Ellipse ROI"), ("Del", "Delete Measurement")):
        assert (k, name) in keys
    by_key: dict[str, set[str]] = {}
    for r in rows:
        by_key.setdefault(r.keys, set()).add(r.action)
    assert {k: a for k, a in by_key.items() if len(a) > 1} == {}
    tb = [a.text() for a in main_window.toolbar.actions()]
    assert all(f"Measure {k.label}" in tb for k in MeasureKind)


def _pdf_text(path) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(p.extract_text() for p in PdfReader(str(path)).pages).split())


@pytest.mark.slow
def test_measurements_are_recorded_with_the_open_run_and_listed_in_its_pdf(qtbot, care, tmp_path):
    from tests.ui.care_session import QUESTION, TUMOUR_SLICE, settle

    w, view, mc = care.window, care.view, care.window.measure
    _align(view)
    QTest.keyClick(view, Qt.Key.Key_M)
    _drag(view, _at(view, 100, 200), _at(view, 300, 200))  # before any run: stays in the session
    assert not mc.panel.record_button.isEnabled()
    with qtbot.waitSignal(care.run_finished, timeout=120_000) as sig:
        care.start_run(QUESTION, "tiny")
    rec = sig.args[0].record
    assert rec.status == "completed" and view.slice_index == TUMOUR_SLICE
    assert mc.panel.record_button.isEnabled() and mc.panel.rows()[0][4] == ""
    # Made while the run is open: recorded at once, as an override of the run.
    QTest.keyClick(view, Qt.Key.Key_Q)
    _drag(view, _at(view, 10, 10), _at(view, 40, 30))
    mc.panel.record_button.click()  # and the earlier one
    settle(qtbot, care)
    assert [r[4] for r in mc.panel.rows()] == ["recorded", "recorded"]
    kinds = [(o.kind, o.target) for o in care.audit.state.overrides]
    assert kinds == [("measurement", "Rectangle ROI"), ("measurement", "Length")]
    length, roi = (mc.results[m.mid].text for m in mc.measurements())
    out = tmp_path / "run.pdf"
    with qtbot.waitSignal(care.report_written, timeout=120_000):
        care.export_report(rec.run_id, out)
    text = _pdf_text(out)
    assert "Measurements" in text and f"{200 * SX:.2f} mm" in text and "Rectangle ROI" in text
    assert "you measured Length" in text and roi.split(";")[0] in text

    # Deleting it appends a removal: the PDF no longer lists it as a measurement.
    mc.select(mc.measurements()[0].mid)
    w.activateWindow()  # a shortcut needs an active window; nothing made this one active
    qtbot.waitUntil(w.isActiveWindow)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_Delete)
    settle(qtbot, care)
    assert care.audit.state.overrides[-1].kind == "measurement_removed"
    out2 = tmp_path / "run2.pdf"
    with qtbot.waitSignal(care.report_written, timeout=120_000):
        care.export_report(rec.run_id, out2)
    text2 = _pdf_text(out2)
    assert "you removed the measurement Length" in text2
    table = text2.split("Measurements", 1)[1]
    assert "1 Rectangle ROI" in table and f"Length {200 * SX:.2f} mm axial" not in table
    assert math.isfinite(mc.results[mc.measurements()[0].mid].mean)
