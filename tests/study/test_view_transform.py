"""The viewing transform's algebra and labels, and the frame rate a file states (no Qt)."""
from __future__ import annotations

import itertools

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from app.study.dicom.frame_rate import frame_rate
from app.study.loader import load
from app.study.reformat import EdgeLabels
from app.study.view_transform import IDENTITY, models_view_note, transform_edge_labels

AXIAL = EdgeLabels(left="R", right="L", top="A", bottom="P")


def test_flips_and_turns_compose_and_undo():
    t = IDENTITY.flipped_horizontally()
    assert t.apply(3, 5) == (-3, 5) and t.mirrored and t.describe() == "flipped left-right"
    assert t.flipped_horizontally().is_identity
    r = IDENTITY.rotated()
    assert r.apply(1, 0) == (0, 1)  # screen right goes to the bottom (y points down)
    assert r.rotated().rotated().rotated().is_identity
    assert r.rotated(clockwise=False).is_identity
    assert r.describe() == "rotated 90\u00b0 clockwise" and r.swaps_axes and r.shown_size(4, 7) == (7, 4)
    assert IDENTITY.flipped_vertically().describe() == "flipped top-bottom"
    # Every one of the 8 has an inverse that undoes it and a description.
    seen = set()
    for ops in itertools.chain.from_iterable(itertools.product("hvr", repeat=n) for n in range(1, 5)):
        t = IDENTITY
        for o in ops:
            t = t.flipped_horizontally() if o == "h" else t.flipped_vertically() if o == "v" else t.rotated()
        seen.add(t.m)
        assert t.invert(*t.apply(2.0, -7.0)) == (2.0, -7.0)
        assert bool(t.describe()) != t.is_identity
    assert len(seen) == 8


def test_edge_labels_follow_the_transform():
    assert transform_edge_labels(AXIAL, IDENTITY) == AXIAL
    assert transform_edge_labels(AXIAL, IDENTITY.flipped_horizontally()) == EdgeLabels("L", "R", "A", "P")
    assert transform_edge_labels(AXIAL, IDENTITY.flipped_vertically()) == EdgeLabels("R", "L", "P", "A")
    # Clockwise: what was at the top (A) is now on the right, the left (R) at the top.
    assert transform_edge_labels(AXIAL, IDENTITY.rotated()) == EdgeLabels(left="P", right="A", top="R", bottom="L")


def test_models_note_says_what_differs():
    assert models_view_note(IDENTITY, False) == ""
    assert models_view_note(IDENTITY.flipped_horizontally(), False) == (
        "The models see the slice in standard orientation (your view is flipped left-right).")
    assert models_view_note(IDENTITY, True) == "The models see the slice not inverted (your view is inverted)."
    both = models_view_note(IDENTITY.rotated(), True)
    assert "standard orientation" in both and "rotated 90\u00b0 clockwise and inverted" in both


@pytest.mark.parametrize(("attrs", "fps", "source"), [
    ({"FrameTime": "33.333"}, 1000 / 33.333, "FrameTime 33.333 ms"),
    ({"FrameTimeVector": ["0", "40", "40", "40"]}, 25.0, "FrameTimeVector (mean 40 ms)"),
    ({"CineRate": "15"}, 15.0, "CineRate 15 /s"),
    ({"RecommendedDisplayFrameRate": "24"}, 24.0, "RecommendedDisplayFrameRate 24 /s"),
    ({"FrameTime": "0", "CineRate": "12"}, 12.0, "CineRate 12 /s"),  # a zero frame time is no rate
])
def test_frame_rate_from_the_header(attrs, fps, source):
    ds = Dataset()
    for k, v in attrs.items():
        setattr(ds, k, v)
    rate = frame_rate(ds)
    assert rate is not None and rate.fps == pytest.approx(fps) and rate.source == source


def test_frame_rate_on_real_files():
    us = load([get_testdata_file("color3d_jpeg_baseline.dcm")]).volumes[0]  # 120 frames, FrameTime 33.333
    assert us.temporal and us.frame_rate == pytest.approx(30.0, abs=0.01)
    assert us.frame_rate_source == "FrameTime 33.333 ms"
    mr = load([get_testdata_file("emri_small.dcm")]).volumes[0]  # 10 frames, no timing
    assert mr.num_slices == 10 and mr.frame_rate is None and mr.frame_rate_source == ""
    assert frame_rate(Dataset()) is None
