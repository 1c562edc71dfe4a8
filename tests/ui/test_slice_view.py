"""SliceView behaviour, asserted on the pixels it renders, with the real chest CT."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from ui_helpers import focus_voxel, grab_rgb, pixel

from app.study.display import CT_PRESETS, apply_window
from app.study.reformat import Plane
from app.study.volume import Window

MID = 24  # middle axial slice of the 48-slice CT


def grey(value: float, window: Window) -> int:
    return int(apply_window(np.array([value], np.float32), window)[0])


def _wheel(view, steps: int, modifiers=Qt.KeyboardModifier.NoModifier, pos=None):
    pos = QPointF(pos or QPointF(view.width() / 2, view.height() / 2))
    ev = QWheelEvent(
        pos, view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * steps),
        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False,
    )
    view.wheelEvent(ev)


def _image_block(view) -> np.ndarray:
    r = view.image_rect().toRect().intersected(view.rect())
    return grab_rgb(view)[r.top() + 10 : r.bottom() - 10, r.left() + 10 : r.right() - 10]


def test_wheel_and_keys_scroll_and_change_pixels(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    assert (view.plane, view.slice_index, view.slice_count) == (Plane.AXIAL, MID, 48)
    before = _image_block(view)
    with qtbot.waitSignal(view.slice_changed):
        _wheel(view, -1)  # towards the user: next slice
    assert view.slice_index == MID + 1
    after = _image_block(view)
    assert np.abs(after.astype(int) - before.astype(int)).mean() > 1.0
    _wheel(view, +2)
    assert view.slice_index == MID - 1
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert view.slice_index == 47
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.slice_index == 0
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.slice_index == 4  # a tenth of the stack
    qtbot.keyClick(view, Qt.Key.Key_Down)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.slice_index == 5
    # The rendered slice is the array's slice 5.
    p = focus_voxel(view, 256, 300)
    expected = grey(ct_volume.array[5, 300, 256], view.window)
    assert pixel(view, p) == (expected,) * 3


def test_ctrl_wheel_zooms_and_keys_fit(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    z0 = view.zoom
    _wheel(view, 2, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom == pytest.approx(z0 * 1.25**2)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert view.zoom == pytest.approx(z0 * 1.25)
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert view.zoom == pytest.approx(z0)
    # The scale bar tracks zoom: same mm, twice the pixels when zoomed 2x (or a shorter bar).
    mm0, px0 = view.scale_bar()
    view.set_zoom(view.zoom * 2)
    mm1, px1 = view.scale_bar()
    assert px1 / mm1 == pytest.approx(2 * px0 / mm0)


def test_right_drag_window_level(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    view.set_window(CT_PRESETS["mediastinum"])
    hu = float(ct_volume.array[MID, 300, 256])
    p = focus_voxel(view, 256, 300)
    g0 = pixel(view, p)[0]
    assert g0 == grey(hu, view.window)
    start = QPoint(100, 100)
    # Right-drag 100 px to the right: wider window (less contrast).
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=start)
    qtbot.mouseMove(view, start + QPoint(100, 0))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=start + QPoint(100, 0))
    w = view.window
    assert w.center == pytest.approx(50.0) and w.width == pytest.approx(350 + 100 * 350 / 250)
    g1 = pixel(view, p)[0]
    assert g1 == grey(hu, w)
    # Right-drag down: higher level, so the same tissue gets darker.
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=start)
    qtbot.mouseMove(view, start + QPoint(0, 60))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=start + QPoint(0, 60))
    assert view.window.center > 50.0
    g2 = pixel(view, p)[0]
    assert g2 == grey(hu, view.window)
    assert g2 < g1 or g1 == 0


def test_presets_give_expected_grey(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    # A soft-tissue voxel and a lung voxel of the middle slice.
    for (col, row) in ((256, 300), (150, 256)):
        hu = float(ct_volume.array[MID, row, col])
        p = focus_voxel(view, col, row)
        for name in ("lung", "mediastinum", "bone", "brain", "abdomen"):
            view.apply_preset(name)
            assert view.window == CT_PRESETS[name]
            want = grey(hu, CT_PRESETS[name])
            assert pixel(view, p) == (want, want, want), (name, hu)
    # Lung tissue is black in the mediastinal window and mid-grey in the lung window.
    hu_lung = float(ct_volume.array[MID, 256, 150])
    assert hu_lung < -700
    view.apply_preset("auto")
    assert view.window.name == "auto"
    qtbot.keyClick(view, Qt.Key.Key_R)
    assert view.window == ct_volume.window  # reset to the file's window


def test_reformat_image_size_and_aspect(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    qtbot.keyClick(view, Qt.Key.Key_2)
    assert view.plane == Plane.CORONAL
    g = view.geometry_
    assert g.image_size == (512, 48)
    r = view.image_rect()
    # Drawn with physical proportions: 48 x 5 mm tall, 512 x 0.5703 mm wide.
    assert r.height() / r.width() == pytest.approx((48 * 5.0) / (512 * 0.5703125), rel=1e-3)
    assert view.frame_shape() == (48, 512)
    # Rendered: rows above/below the image are background, inside is anatomy.
    rgb = grab_rgb(view)
    top = int(r.top())
    assert rgb[top - 20 : top - 5, view.width() // 2].max() < 40 or top < 25
    qtbot.keyClick(view, Qt.Key.Key_3)
    assert view.plane == Plane.SAGITTAL and view.geometry_.image_size == (512, 48)
    qtbot.keyClick(view, Qt.Key.Key_1)
    assert view.plane == Plane.AXIAL and view.slice_index == MID


def test_orientation_labels_are_painted(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    labels = view.geometry_.edge_labels()
    assert (labels.left, labels.right, labels.top, labels.bottom) == ("R", "L", "A", "P")

    def yellow(rgb, x0, x1, y0, y1):
        b = rgb[y0:y1, x0:x1].astype(int)
        return int(((b[..., 0] > 200) & (b[..., 1] > 170) & (b[..., 2] < 140)).sum())

    h, w = view.height(), view.width()
    on = grab_rgb(view)
    view.show_annotations = False
    off = grab_rgb(view)
    for region in ((0, 30, h // 2 - 20, h // 2 + 20), (w - 30, w, h // 2 - 20, h // 2 + 20), (w // 2 - 20, w // 2 + 20, 0, 30)):
        assert yellow(on, *region) > 10 and yellow(off, *region) == 0


def test_overlay_toggle_and_opacity_change_pixel(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    mask = np.zeros(ct_volume.array.shape, bool)
    mask[MID, 280:320, 236:276] = True
    p = focus_voxel(view, 256, 300)
    plain = pixel(view, p)
    with qtbot.waitSignal(view.overlays.changed):
        layer = view.overlays.add("lesion", mask, (255, 0, 0), opacity=0.5)
    assert layer.is_3d
    g = plain[0]
    tinted = pixel(view, p)
    want = np.array([g * 0.5 + 255 * 0.5, g * 0.5, g * 0.5])
    assert np.abs(np.array(tinted) - want).max() <= 1
    view.overlays.set_opacity("lesion", 0.9)
    stronger = pixel(view, p)
    assert stronger[0] > tinted[0] - 1 and stronger[1] < tinted[1]
    view.overlays.set_visible("lesion", False)
    assert pixel(view, p) == plain
    view.overlays.set_visible("lesion", True)
    view.overlays.set_color("lesion", "#00ff00")
    assert pixel(view, p)[1] > pixel(view, p)[0]
    # Also visible in the coronal reformat (3-D mask), at row of slice 24 -> row 47-24.
    view.set_plane(Plane.CORONAL)
    view.set_slice(300)
    q = focus_voxel(view, 256, 47 - MID)
    c = pixel(view, q)
    assert c[1] > c[0] + 50
    view.overlays.remove("lesion")
    assert "lesion" not in view.overlays
    c2 = pixel(view, q)
    assert c2[0] == c2[1] == c2[2]


def test_2d_mask_and_box_on_their_slice(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    m2 = np.zeros(ct_volume.array.shape[1:], bool)
    m2[290:310, 246:266] = True
    view.overlays.add("entity", m2, "#ff0000", opacity=1.0, slice_index=MID)
    view.overlays.add_box("crop", MID, (200, 250, 320, 350), "#ffd400", line_width=3)
    p = focus_voxel(view, 256, 300, zoom=2.0)
    assert pixel(view, p) == (255, 0, 0)
    edge = view.image_to_widget(200, 300)  # the box's left edge
    rgb = grab_rgb(view)
    x, y = round(edge.x()), round(edge.y())
    patch = rgb[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3).astype(int)
    assert ((patch[:, 0] > 200) & (patch[:, 1] > 170) & (patch[:, 2] < 80)).any()
    view.set_slice(MID + 1)
    c = pixel(view, p)
    assert c[0] == c[1] == c[2]


def test_cursor_readout_shows_hu(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    p = focus_voxel(view, 150, 256)
    infos = []
    view.cursor_moved.connect(infos.append)
    qtbot.mouseMove(view, p)
    info = infos[-1]
    hu = int(ct_volume.array[MID, 256, 150])
    assert info.ijk == (150, 256, MID)
    assert info.value == hu and info.unit == "HU"
    assert info.value_text() == f"HU {hu}"
    lps = ct_volume.index_to_lps(np.array([150, 256, MID]))[0]
    assert info.lps == pytest.approx(tuple(lps))


def test_single_image_planes(qtbot, view, ct_volume):
    from app.study.volume import Volume

    one = Volume(array=ct_volume.array[MID : MID + 1].copy(), spacing=ct_volume.spacing,
                 origin=ct_volume.origin, direction=ct_volume.direction, modality="CT",
                 window=Window(40, 400, "abdomen"))
    view.set_volume(one)
    assert view.available_planes() == [Plane.AXIAL]
    view.set_plane(Plane.CORONAL)
    assert view.plane == Plane.AXIAL
