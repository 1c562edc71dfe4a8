"""The viewer tools in the real window on real files: CT presets on F2-F6, cine on
pydicom-data's multi-frame files at the file's rate, the 2x2 layout's click-linked panes and
reference lines, and the Ask panel saying when the view is not what the models read."""
from __future__ import annotations

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCore import QPoint, Qt
from ui_helpers import focus_voxel, grab_rgb

from app.study.display import CT_PRESETS
from app.study.reformat import Plane
from app.ui.dialogs import collect_shortcuts
from app.ui.layouts import Layout
from app.ui.reference_lines import PLANE_COLORS, ReferenceLine, line_endpoints, lines_for


def _open(qtbot, w, path):
    with qtbot.waitSignal(w.series_loaded, timeout=120_000):
        w.open_paths([path])
    qtbot.waitUntil(lambda: not w.is_loading, timeout=30_000)


def _key(qtbot, w, key, mod=Qt.KeyboardModifier.NoModifier):
    w.view.setFocus()
    qtbot.keyClick(w.view, key, mod)


def test_preset_keys_set_ct_windows_and_refuse_mr(qtbot, main_window, ct_dicom_dir, mr_dicom_dir):
    w = main_window
    _open(qtbot, w, ct_dicom_dir)
    for key, name in ((Qt.Key.Key_F2, "lung"), (Qt.Key.Key_F5, "bone"), (Qt.Key.Key_F3, "mediastinum")):
        _key(qtbot, w, key)
        assert (w.view.window.center, w.view.window.width) == (CT_PRESETS[name].center, CT_PRESETS[name].width)
    w.preset_menu.aboutToShow.emit()
    texts = [a.text() for a in w.preset_menu.actions()]
    assert any(t.startswith("Lung") and t.endswith("\tF2") for t in texts)
    rows = {(r.keys, r.action) for r in collect_shortcuts(w)}
    assert ("F2", "Lung Window (CT)") in rows and ("H", "Flip Left-Right") in rows and ("Space", "Play / Pause Cine") in rows
    _open(qtbot, w, mr_dicom_dir)
    before = w.view.window
    _key(qtbot, w, Qt.Key.Key_F2)
    assert w.view.window == before
    assert "CT (Hounsfield) window" in w.status.currentMessage() and "MR" in w.status.currentMessage()


def test_cine_plays_at_the_files_rate_loops_and_pauses(qtbot, main_window, ct_dicom_dir):
    w = main_window
    cine = w.tools.cine
    _open(qtbot, w, get_testdata_file("color3d_jpeg_baseline.dcm"))  # 120 frames, FrameTime 33.333 ms
    v = w.view
    assert v.volume.temporal and v.slice_count == 120
    assert cine.fps == pytest.approx(30.0, abs=0.01) and cine.timer.interval() == 33
    assert cine.rate_source == "from the file: FrameTime 33.333 ms"
    assert "(file)" in w.tools.cine_controls.source.text()
    v.set_slice(0)
    # Space is the viewer's only while focus is in the views (elsewhere it presses buttons).
    w.series_browser.setFocus()
    qtbot.keyClick(w.series_browser, Qt.Key.Key_Space)
    assert not cine.playing
    _key(qtbot, w, Qt.Key.Key_Space)
    assert cine.playing and w.tools.actions["cine"].isChecked()
    qtbot.waitUntil(lambda: v.slice_index >= 3, timeout=10_000)
    v.set_slice(118)
    qtbot.waitUntil(lambda: v.slice_index < 100, timeout=10_000)  # past the last frame: back to the first
    assert cine.playing
    _key(qtbot, w, Qt.Key.Key_Space)
    assert not cine.playing and not w.tools.actions["cine"].isChecked()
    k = v.slice_index
    qtbot.wait(200)
    assert v.slice_index == k
    # Without loop it stops on the last frame.
    w.tools.cine_controls.loop.setChecked(False)
    v.set_slice(117)
    assert cine.play()
    qtbot.waitUntil(lambda: not cine.playing, timeout=10_000)
    assert v.slice_index == 119
    # The user's rate; a new study stops playback and takes the new file's rate.
    w.tools.cine_controls.fps.setValue(5.0)
    assert cine.timer.interval() == 200 and cine.rate_source == "set by you"
    v.set_slice(0)
    cine.play()
    _open(qtbot, w, get_testdata_file("emri_small.dcm"))  # 10 frames, no timing in the file
    assert not cine.playing
    assert cine.fps == 10.0 and cine.timer.interval() == 100
    assert "default 10 fps (the file states no frame rate)" in cine.rate_source


def test_2x2_layout_links_panes_by_click_and_draws_reference_lines(qtbot, main_window, ct_dicom_dir):
    w = main_window
    _open(qtbot, w, ct_dicom_dir)
    _key(qtbot, w, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    lay = w.tools.layouts
    assert lay.layout == Layout.FOUR and w.tools.layout_actions[Layout.FOUR].isChecked()
    qtbot.waitUntil(lambda: all(p.isVisible() and p.width() > 100 for p in lay.visible_panes()))
    primary, coronal, sagittal, native = lay.visible_panes()
    assert primary is w.view
    assert [p.plane for p in (primary, coronal, sagittal, native)] == [Plane.AXIAL, Plane.CORONAL, Plane.SAGITTAL, Plane.AXIAL]
    assert all(p.volume is w.current_volume for p in (coronal, sagittal, native))

    i, j, k = 300, 200, primary.slice_index
    g = primary.geometry_
    _, col, row = g.screen_position((i, j, k))
    at = focus_voxel(primary, int(col), int(row), zoom=4.0)  # a voxel several screen pixels wide
    qtbot.mouseClick(primary, Qt.MouseButton.LeftButton, pos=at)
    assert coronal.slice_index == j and sagittal.slice_index == i and native.slice_index == k

    # In the coronal pane: the axial slice k as a row, the sagittal slice i as a column.
    cg = coronal.geometry_
    _, ccol, crow = cg.screen_position((i, j, k))
    lines = lines_for(coronal, lay.visible_panes())
    assert ReferenceLine("row", crow + 0.5, Plane.AXIAL) in lines
    assert ReferenceLine("col", ccol + 0.5, Plane.SAGITTAL) in lines
    # ...and drawn there: red (axial) pixels along the row, away from the crossing.
    rgb = grab_rgb(coronal).astype(int)
    a, b = line_endpoints(coronal, ReferenceLine("row", crow + 0.5, Plane.AXIAL))
    y = round(a.y())
    xs = [round(a.x() + f * (b.x() - a.x())) for f in (0.1, 0.3, 0.8)]
    red = [rgb[y - 1: y + 2, x, 0] - rgb[y - 1: y + 2, x, 1] for x in xs]
    assert all(r.max() > 60 for r in red), red
    assert np.abs(rgb[y + 8, xs[0], 0] - rgb[y + 8, xs[0], 1]) < 10  # grey image off the line

    # Scrolling the coronal pane moves the coronal line in the axial pane.
    coronal.set_slice(j + 10)
    assert ReferenceLine("row", g.screen_position((i, j + 10, k))[2] + 0.5, Plane.CORONAL) in lines_for(primary, lay.visible_panes())
    # Double-click a reference pane: its plane comes to the active pane.
    p = QPoint(sagittal.width() // 2, sagittal.height() // 2)
    qtbot.mouseDClick(sagittal, Qt.MouseButton.LeftButton, pos=p)
    assert primary.plane == Plane.SAGITTAL and {coronal.plane, sagittal.plane} == {Plane.AXIAL, Plane.CORONAL}
    _key(qtbot, w, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert lay.layout == Layout.SINGLE and not coronal.isVisible() and coronal.volume is None


def test_ask_panel_says_when_the_view_is_not_what_the_models_read(qtbot, main_window, ct_dicom_dir):
    w = main_window
    ask = w.care.ask
    _open(qtbot, w, ct_dicom_dir)
    assert ask.view_note.isHidden()
    _key(qtbot, w, Qt.Key.Key_H)
    assert w.view.view_transform.describe() == "flipped left-right"
    assert not ask.view_note.isHidden()
    assert ask.view_note.text() == "The models see the slice in standard orientation (your view is flipped left-right)."
    _key(qtbot, w, Qt.Key.Key_I)
    assert w.view.invert_active and w.tools.actions["invert"].isChecked()
    assert "flipped left-right and inverted" in ask.view_note.text()
    _key(qtbot, w, Qt.Key.Key_R, Qt.KeyboardModifier.ShiftModifier)
    assert w.view.view_transform.is_identity and not w.view.invert_active
    assert ask.view_note.isHidden() and not w.tools.actions["invert"].isChecked()


def test_1x2_on_the_brain_mr_links_through_its_flipped_axes(qtbot, main_window, mr_dicom_dir):
    """The brain MR's slice axis runs against the patient axis (see the shared data's README):
    the link and the lines must go through the geometry's flips, not raw indices."""
    w = main_window
    _open(qtbot, w, mr_dicom_dir)
    lay = w.tools.layouts
    lay.set_layout(Layout.TWO)
    qtbot.waitUntil(lambda: lay.secondaries[0].isVisible() and lay.secondaries[0].width() > 100)
    primary, other = lay.visible_panes()
    assert (primary.plane, other.plane) == (Plane.AXIAL, Plane.CORONAL)
    w.view.set_plane(Plane.CORONAL)
    assert other.plane == Plane.AXIAL  # the reference pane takes the plane the active one left
    g, og = primary.geometry_, other.geometry_
    ijk = (120, 140, 5)
    _, col, row = g.screen_position(ijk)
    at = focus_voxel(primary, int(col), int(row), zoom=6.0)
    assert primary.cursor_info_at(at).ijk[0::2] == (120, 5)  # x and z; y is the coronal slice
    qtbot.mouseClick(primary, Qt.MouseButton.LeftButton, pos=at)
    assert other.slice_index == 5
    _, ocol, orow = og.screen_position((120, primary.slice_index, 5))
    assert lines_for(other, lay.visible_panes()) == [ReferenceLine("row", orow + 0.5, Plane.CORONAL)]
    assert lines_for(primary, lay.visible_panes()) == [ReferenceLine("row", g.screen_position((0, 0, 5))[2] + 0.5, Plane.AXIAL)]
    # Flip the active pane: its line stays on the same anatomy (the mapping carries the flip).
    a0, _ = line_endpoints(primary, lines_for(primary, lay.visible_panes())[0])
    primary.flip_vertical()
    a1, _ = line_endpoints(primary, lines_for(primary, lay.visible_panes())[0])
    c = primary.image_centre()
    assert a1.y() == pytest.approx(2 * c.y() - a0.y())
