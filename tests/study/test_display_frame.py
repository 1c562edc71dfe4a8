"""The display frame (app.study.display_frame): one physical phantom stored in every one of the
48 axis orders/signs gives the same displayed slice, and the maps back to the voxel grid are
exact inverses."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.study.display import apply_window, slice_rgb
from app.study.display_frame import display_frame
from app.study.reformat import Plane, native_plane, slice_geometry
from app.study.volume import Volume, Window

SHAPE_LPS = (5, 7, 4)  # voxels along patient L, P, S: all different, so a transposition shows
PHANTOM = np.arange(np.prod(SHAPE_LPS), dtype=np.int16).reshape(SHAPE_LPS)  # C[l, p, s]
NORMAL_PLANE = {2: Plane.AXIAL, 1: Plane.CORONAL, 0: Plane.SAGITTAL}


def stored(axes: tuple[int, int, int], signs: tuple[int, int, int]) -> Volume:
    """The phantom stored with array x, y, z along patient axes ``axes`` with ``signs``."""
    t = np.transpose(PHANTOM, axes)  # t[i, j, k]: x, y, z index
    for a, s in enumerate(signs):
        if s < 0:
            t = np.flip(t, a)
    direction = np.zeros((3, 3))
    for a, (pa, s) in enumerate(zip(axes, signs)):
        direction[pa, a] = s
    return Volume(np.ascontiguousarray(t.transpose(2, 1, 0)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), direction, "MR")


def physical_slice(axes, signs, k: int) -> int:
    """Index along the normal patient axis of stored slice ``k``."""
    n = SHAPE_LPS[axes[2]]
    return k if signs[2] > 0 else n - 1 - k


def expected_display(normal: int, p: int) -> np.ndarray:
    """Radiological convention, by hand: axial right = L, down = P; coronal right = L, down =
    I; sagittal right = P, down = I."""
    c = PHANTOM
    if normal == 2:
        return c[:, :, p].T  # [p, l]
    if normal == 1:
        return c[:, p, ::-1].T  # [inferior-first s, l]
    return c[p, :, ::-1].T  # [inferior-first s, p]


ALL_STORAGES = [(axes, signs) for axes in itertools.permutations(range(3))
                for signs in itertools.product((1, -1), repeat=3)]


@pytest.mark.parametrize("axes,signs", ALL_STORAGES)
def test_every_storage_order_displays_the_same_physical_slice(axes, signs):
    v = stored(axes, signs)
    frame = display_frame(v)
    assert frame.plane == NORMAL_PLANE[axes[2]] == native_plane(v)
    for k in range(v.num_slices):
        img = frame.image(k)
        np.testing.assert_array_equal(img, expected_display(axes[2], physical_slice(axes, signs, k)))
        assert img.shape == frame.shape
        # Exact inverse: back into the voxel grid, and forth again.
        np.testing.assert_array_equal(frame.to_array(img), v.slice(k))
        np.testing.assert_array_equal(frame.from_array(v.slice(k)), img)
        # A display pixel's voxel index reads the same value from the array.
        for row, col in ((0, 0), (img.shape[0] - 1, 1), (1, img.shape[1] - 1)):
            i, j, kk = frame.voxel_index(k, col, row)
            assert kk == k and v.array[kk, j, i] == img[row, col]


@pytest.mark.parametrize("axes,signs", ALL_STORAGES)
def test_boxes_map_pixel_edges_both_ways(axes, signs):
    v = stored(axes, signs)
    frame = display_frame(v)
    h, w = frame.shape
    rng = np.random.default_rng(7)
    for _ in range(20):
        x0, x1 = sorted(rng.choice(w + 1, 2, replace=False))
        y0, y1 = sorted(rng.choice(h + 1, 2, replace=False))
        box = (int(x0), int(y0), int(x1), int(y1))
        arr_box = frame.box_to_array(box)
        assert frame.box_from_array(arr_box) == box
        # The array box covers exactly the pixels of the display box.
        shown = np.zeros(frame.shape, bool)
        shown[y0:y1, x0:x1] = True
        in_array = np.zeros(frame.array_shape, bool)
        a0, b0, a1, b1 = (int(c) for c in arr_box)
        in_array[b0:b1, a0:a1] = True
        np.testing.assert_array_equal(frame.to_array(shown), in_array)


def test_wrong_layout_is_refused():
    v = stored((1, 0, 2), (1, 1, 1))  # transposed: display (7, 5)... array (5, 7)
    frame = display_frame(v)
    assert frame.transposed and frame.shape == (7, 5) and frame.array_shape == (5, 7)
    with pytest.raises(ValueError, match="display layout"):
        frame.to_array(np.zeros((5, 7)))
    with pytest.raises(ValueError, match="array layout"):
        frame.from_array(np.zeros((7, 5)))


def test_pixel_spacing_follows_the_display_axes():
    v = stored((1, 0, 2), (1, 1, 1))
    v.spacing = (0.5, 0.8, 3.0)  # array x (patient P) 0.5 mm, array y (patient L) 0.8 mm
    frame = display_frame(v)
    assert frame.pixel_spacing == (0.8, 0.5)  # screen columns run along L


def test_mr_model_image_is_the_displayed_slice_not_the_raw_array(mr_dicom_dir):
    """The shared brain MR stores rows posterior-to-anterior (row direction -y): the model input
    is the viewer's slice, anterior at the top, not the raw array upside down."""
    from app.study.loader import load

    v = load([mr_dicom_dir]).volumes[0]
    assert v.direction[1, 1] == pytest.approx(-1.0)
    win = Window(400.0, 800.0)
    k = 12
    shown = apply_window(slice_geometry(v, native_plane(v)).extract(v.array, k), win)
    model = slice_rgb(v, k, win)
    np.testing.assert_array_equal(model[..., 0], shown)
    raw = apply_window(v.slice(k), win)
    assert not np.array_equal(model[..., 0], raw)
    np.testing.assert_array_equal(model[..., 0], raw[::-1])
