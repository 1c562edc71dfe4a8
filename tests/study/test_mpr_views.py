"""MPR slices are views of the volume, never copies (app/study/reformat.py), read-only so no
caller writes into the series through them, and the same pixels the copying code gave."""
from __future__ import annotations

import numpy as np
import pytest

from app.study.display_frame import display_frame
from app.study.reformat import Plane, slice_geometry


def _copied(g, array: np.ndarray, k: int) -> np.ndarray:
    """The reference: the former np.take extraction (always a copy)."""
    img = np.take(array, k, axis=g.slice_axis)
    if [a for a in range(3) if a != g.slice_axis].index(g.row_axis) != 0:
        img = np.swapaxes(img, 0, 1)
    return img[::-1 if g.row_flip else 1, ::-1 if g.col_flip else 1]


@pytest.mark.parametrize("plane", list(Plane))
def test_every_plane_is_a_read_only_view_of_the_volume(ct_volume, plane):
    g = slice_geometry(ct_volume, plane)
    for k in (0, g.num_slices // 2, g.num_slices - 1):
        img = g.extract(ct_volume.array, k)
        assert np.shares_memory(img, ct_volume.array)
        assert np.array_equal(img, _copied(g, ct_volume.array, k))
        assert img.shape == (g.image_size[1], g.image_size[0])
        with pytest.raises(ValueError, match="read-only"):
            img[0, 0] = 0
    assert ct_volume.array.flags.writeable  # the volume itself is untouched


def test_the_display_frame_and_flipped_volumes_are_views_too(ct_volume):
    frame = display_frame(ct_volume)
    k = ct_volume.num_slices // 2
    assert np.shares_memory(frame.image(k), ct_volume.array)
    # A volume stored with flipped axes (rows and columns reversed) still reformats as a view.
    flipped = ct_volume.array[:, ::-1, ::-1]
    direction = ct_volume.direction @ np.diag([-1.0, -1.0, 1.0])
    from dataclasses import replace

    v = replace(ct_volume, array=flipped, direction=direction)
    for plane in Plane:
        g = slice_geometry(v, plane)
        assert g.row_flip or g.col_flip or plane is not Plane.AXIAL
        img = g.extract(v.array, g.num_slices // 2)
        assert np.shares_memory(img, ct_volume.array)
        assert np.array_equal(img, _copied(g, v.array, g.num_slices // 2))
