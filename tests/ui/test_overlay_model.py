"""Qt-free overlay model and compositing."""
from __future__ import annotations

import numpy as np
import pytest

from app.study.overlays import OverlayStack, composite, outline_of


def test_composite_blends_only_masked_pixels():
    base = np.full((8, 8), 100, np.uint8)
    stack = OverlayStack((1, 8, 8))
    mask = np.zeros((8, 8), bool)
    mask[2:5, 3:6] = True
    layer = stack.add("m", mask, (255, 0, 0), opacity=0.5, slice_index=0)
    layers = stack.masks_for(lambda a, k: a[k], 0, 0)
    out = composite(base, layers)
    assert out.shape == (8, 8, 3)
    assert tuple(out[3, 4]) == (178, 50, 50)  # 100*0.5 + 255*0.5 rounded
    assert tuple(out[0, 0]) == (100, 100, 100)
    assert base[3, 4] == 100  # cached base untouched
    stack.set_visible("m", False)
    assert stack.masks_for(lambda a, k: a[k], 0, 0) == []
    assert layer.name == "m"


def test_2d_mask_only_on_its_slice_and_native_plane():
    stack = OverlayStack((4, 8, 8))
    stack.add("s2", np.ones((8, 8), bool), "#00ff00", slice_index=2)
    assert len(stack.masks_for(lambda a, k: a[k], 0, 2)) == 1
    assert stack.masks_for(lambda a, k: a[k], 0, 1) == []
    assert stack.masks_for(lambda a, k: a[:, k], 1, 2) == []  # a reformat


def test_validation_and_versioning():
    stack = OverlayStack((4, 8, 8))
    seen = []
    stack.subscribe(lambda: seen.append(stack.version))
    with pytest.raises(ValueError):
        stack.add("bad", np.ones((4, 8, 9), bool))
    with pytest.raises(ValueError):
        stack.add("bad", np.ones((8, 8), bool))  # 2-D without slice_index
    with pytest.raises(ValueError):
        stack.add("bad", np.ones((4, 8, 8), bool), opacity=1.5)
    stack.add("a", np.ones((4, 8, 8), bool))
    stack.add_box("box", 1, (1, 1, 4, 4), "#ffd400")
    stack.set_opacity("a", 0.9)
    stack.set_color("a", "#102030")
    assert stack.get("a").color == (16, 32, 48)
    stack.remove("a")
    assert stack.names() == ["box"]
    stack.clear()
    assert len(stack) == 0 and seen == [1, 2, 3, 4, 5, 6]
    with pytest.raises(KeyError):
        stack.set_visible("nope", True)


def test_outline_is_the_boundary():
    m = np.zeros((7, 7), bool)
    m[1:6, 1:6] = True
    o = outline_of(m)
    assert o[1, 1] and o[1, 3] and o[5, 5]
    assert not o[3, 3] and not o[0, 0]
    assert o.sum() == 16
