"""Flip, rotate, invert and reset of the slice view on the real chest CT: pixels compared
with numpy, labels read back, the mapping checked both ways, and a box drawn on a flipped
view landing on the same voxels as on the standard one."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from ui_helpers import focus_voxel, grab_rgb, pixel

from app.study.display import apply_window
from app.study.reformat import EdgeLabels
from app.study.volume import Window
from app.ui.override_tools import BoxDrawTool

MID = 24


def _one_to_one(view, ct_volume):
    """The CT at one voxel per screen pixel, centred: the image block is exact pixels."""
    view.show_annotations = False
    view.set_volume(ct_volume)
    view.set_zoom(1.0)
    r = view.image_rect()
    assert (r.left(), r.top(), r.width(), r.height()) == (64.0, 64.0, 512.0, 512.0)
    return r.toRect()


def _block(view, r):
    return grab_rgb(view)[r.top(): r.bottom() + 1, r.left(): r.right() + 1, 0].astype(int)


def test_flip_mirrors_the_pixels_and_swaps_the_labels(view, ct_volume):
    r = _one_to_one(view, ct_volume)
    before = _block(view, r)
    expected = apply_window(ct_volume.array[MID], view.window)  # the axial CT shows array rows/cols as stored
    assert np.array_equal(before, expected)
    assert view.shown_edge_labels() == EdgeLabels(left="R", right="L", top="A", bottom="P")
    with_signal = []
    view.view_changed.connect(lambda: with_signal.append(True))
    view.flip_horizontal()
    assert with_signal
    after = _block(view, r)
    assert np.array_equal(after, np.fliplr(before)) and not np.array_equal(after, before)
    assert view.shown_edge_labels() == EdgeLabels(left="L", right="R", top="A", bottom="P")
    # The readout under the cursor is the mirrored voxel (same anatomy, other side of the screen).
    info = view.cursor_info_at(QPointF(r.left() + 100.5, r.top() + 300.5))
    assert info.ijk == (511 - 100, 300, MID) and info.value == float(ct_volume.array[MID, 300, 411])
    view.flip_vertical()
    assert np.array_equal(_block(view, r), before[::-1, ::-1])
    assert view.shown_edge_labels() == EdgeLabels(left="L", right="R", top="P", bottom="A")
    # The scale bar stays true: screen px per mm do not change with a flip.
    mm, px = view.scale_bar()
    assert px == mm / ct_volume.spacing[0]


def test_rotate_maps_a_voxel_to_the_turned_point_and_back(view, ct_volume):
    r = _one_to_one(view, ct_volume)
    col, row = 100, 300
    view.rotate_clockwise()
    assert view.view_transform.describe() == "rotated 90\u00b0 clockwise"
    # About the centre (320, 320): offset (x, y) -> (-y, x) on a y-down screen.
    p = view.image_to_widget(col + 0.5, row + 0.5)
    assert (p.x(), p.y()) == (320 - (row + 0.5 - 256), 320 + (col + 0.5 - 256))
    back = view.widget_to_image(p)
    assert back == (col + 0.5, row + 0.5)
    assert view.cursor_info_at(p).ijk == (col, row, MID)
    # The pixels turned: screen (x, y) shows the standard layout's (y, W-1-x)... i.e. rot90 clockwise.
    block = _block(view, r)
    assert np.array_equal(block, np.rot90(apply_window(ct_volume.array[MID], view.window), k=-1))
    # Top of the screen shows what was on the left: the patient's right.
    assert view.shown_edge_labels() == EdgeLabels(left="P", right="A", top="R", bottom="L")
    view.rotate_counter_clockwise()
    assert view.view_transform.is_identity


def test_a_box_drawn_on_a_flipped_view_lands_on_the_same_voxels(qtbot, view, ct_volume, ct_tumour):
    view.set_volume(ct_volume)
    view.set_slice(ct_tumour.slice_index)
    tool = BoxDrawTool(view)
    tool.set_active(True)
    x0, y0, x1, y1 = ct_tumour.box
    a = view.image_to_widget(x0 + 0.5, y0 + 0.5)
    b = view.image_to_widget(x1 - 0.5, y1 - 0.5)

    def drag(p, q):
        got = []
        tool.box_drawn.connect(lambda k, box: got.append((k, box)))
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(round(p.x()), round(p.y())))
        qtbot.mouseMove(view, QPoint(round(q.x()), round(q.y())))
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(round(q.x()), round(q.y())))
        return got[-1]

    standard = drag(a, b)
    view.flip_horizontal()
    # On the flipped screen the same anatomy is mirrored about the image centre.
    cx = view.image_centre().x()
    flipped = drag(QPointF(2 * cx - a.x(), a.y()), QPointF(2 * cx - b.x(), b.y()))
    assert flipped == standard
    assert standard[0] == ct_tumour.slice_index
    bx0, by0, bx1, by1 = standard[1]
    assert abs(bx0 - x0) <= 1 and abs(by0 - y0) <= 1 and abs(bx1 - x1) <= 1 and abs(by1 - y1) <= 1


def test_invert_inverts_the_display_not_the_values(view, ct_volume):
    r = _one_to_one(view, ct_volume)
    stored = ct_volume.array[MID].copy()
    before = _block(view, r)
    p = QPointF(r.left() + 200.5, r.top() + 260.5)
    readout = view.cursor_info_at(p)
    assert view.toggle_invert() is True and view.invert_active
    after = _block(view, r)
    assert np.array_equal(after, apply_window(stored, view.window, invert=True))  # the ramp reversed
    assert np.abs(after - (255 - before)).max() <= 1  # = 255 - before, up to the 8-bit rounding
    assert view.cursor_info_at(p) == readout  # the HU under the cursor is unchanged
    assert np.array_equal(ct_volume.array[MID], stored)
    assert view.view_note() == "inverted (display only)"
    # Reset restores orientation, grey scale, window and fit.
    view.flip_horizontal()
    initial = view.window
    view.set_window(Window(-600.0, 1500.0, "lung"))
    view.reset_view()
    assert not view.invert_active and view.view_transform.is_identity and view.view_note() == ""
    assert view.window == initial
    q = focus_voxel(view, 256, 300)
    assert pixel(view, q) == (int(apply_window(np.array([stored[300, 256]], np.float32), initial)[0]),) * 3


def test_view_keys(qtbot, view, ct_volume):
    view.set_volume(ct_volume)
    assert view.view_transform.is_identity
    view.set_volume(None)
    view.flip_horizontal()  # nothing shown: nothing to flip
    assert view.view_transform.is_identity
    view.set_volume(ct_volume)
    view.flip_horizontal()
    view.set_volume(None)
    view.set_volume(ct_volume)
    assert view.view_transform.is_identity  # a new volume starts in standard orientation


def test_overlay_box_follows_a_rotated_view(view, ct_volume):
    r = _one_to_one(view, ct_volume)
    view.overlays.add_box("t", MID, (100, 300, 160, 340), (0, 255, 0), line_width=1.0)
    view.rotate_clockwise()
    rgb = grab_rgb(view).astype(int)
    # The box's image corners, turned: its edges are where the mapping puts them.
    tl, br = view.image_to_widget(100, 300), view.image_to_widget(160, 340)
    x0, x1 = sorted((tl.x(), br.x()))
    y0, y1 = sorted((tl.y(), br.y()))
    assert (x1 - x0, y1 - y0) == (40, 60)  # 60 wide x 40 high, turned a quarter

    def green(x, y):
        return rgb[round(y) - 1: round(y) + 2, round(x) - 1: round(x) + 2, 1].max() - \
            rgb[round(y) - 1: round(y) + 2, round(x) - 1: round(x) + 2, 0].min() > 100

    assert green((x0 + x1) / 2, y0) and green((x0 + x1) / 2, y1) and green(x0, (y0 + y1) / 2) and green(x1, (y0 + y1) / 2)
    assert not green((x0 + x1) / 2, (y0 + y1) / 2)
    assert r.contains(round(x0), round(y0))
