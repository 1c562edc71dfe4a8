"""Reformat geometry (pure numpy) on the real CT and MR series."""
from __future__ import annotations

import numpy as np
import pytest

from app.study.reformat import Plane, native_plane, orientation_label, slice_geometry


def test_ct_plane_sizes_and_physical_aspect(ct_volume):
    ax = slice_geometry(ct_volume, Plane.AXIAL)
    cor = slice_geometry(ct_volume, Plane.CORONAL)
    sag = slice_geometry(ct_volume, Plane.SAGITTAL)
    assert ax.image_size == (512, 512) and ax.num_slices == 48
    assert cor.image_size == (512, 48) and cor.num_slices == 512
    assert sag.image_size == (512, 48) and sag.num_slices == 512
    assert ax.aspect == pytest.approx(1.0)
    # 5 mm slices shown against 0.5703 mm pixels: each row is ~8.77x taller than wide.
    assert cor.aspect == pytest.approx(5.0 / 0.5703125, rel=1e-4)
    assert cor.physical_size == pytest.approx((512 * 0.5703125, 48 * 5.0), rel=1e-4)
    assert native_plane(ct_volume) == Plane.AXIAL


def test_ct_orientation_labels(ct_volume):
    labels = {p: slice_geometry(ct_volume, p).edge_labels() for p in Plane}
    ax, cor, sag = labels[Plane.AXIAL], labels[Plane.CORONAL], labels[Plane.SAGITTAL]
    assert (ax.left, ax.right, ax.top, ax.bottom) == ("R", "L", "A", "P")
    assert (cor.left, cor.right, cor.top, cor.bottom) == ("R", "L", "S", "I")
    assert (sag.left, sag.right, sag.top, sag.bottom) == ("A", "P", "S", "I")


def test_coronal_extract_matches_array_and_puts_head_on_top(ct_volume):
    cor = slice_geometry(ct_volume, Plane.CORONAL)
    img = cor.extract(ct_volume.array, 256)
    assert img.shape == (48, 512)
    # z increases towards S in this CT, so the top screen row is the last axial slice.
    np.testing.assert_array_equal(img[0], ct_volume.array[47, 256, :])
    np.testing.assert_array_equal(img[-1], ct_volume.array[0, 256, :])


def test_mr_rows_flipped_so_anterior_is_up(mr_volume):
    # This DICOM series runs posterior->anterior down its rows (direction y = -P).
    assert mr_volume.direction[1, 1] == pytest.approx(-1.0)
    ax = slice_geometry(mr_volume, Plane.AXIAL)
    assert ax.row_flip and not ax.col_flip
    lab = ax.edge_labels()
    assert (lab.left, lab.right, lab.top, lab.bottom) == ("R", "L", "A", "P")
    img = ax.extract(mr_volume.array, 10)
    np.testing.assert_array_equal(img[0], mr_volume.array[10, -1, :])


@pytest.mark.parametrize("plane", list(Plane))
def test_screen_to_voxel_round_trip(ct_volume, mr_volume, plane):
    for vol in (ct_volume, mr_volume):
        g = slice_geometry(vol, plane)
        w, h = g.image_size
        k = g.num_slices // 3
        for col, row in ((0, 0), (w - 1, h - 1), (w // 3, h // 2)):
            i, j, kk = g.voxel_index(k, col + 0.5, row + 0.5)
            img = g.extract(vol.array, k)
            assert vol.array[kk, j, i] == img[row, col]
            assert g.screen_position((i, j, kk)) == (k, col, row)


def test_oblique_label_has_two_letters():
    v = np.array([0.8, 0.6, 0.0])
    assert orientation_label(v) == "LP"
    assert orientation_label(-v) == "RA"
