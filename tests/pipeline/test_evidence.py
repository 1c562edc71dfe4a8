"""Evidence construction on the real chest CT and its tumour label."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from app.pipeline.evidence import (
    FALLBACK_REASON,
    build_evidence,
    crop_rect,
    mask_bbox,
    resize_square,
)
from app.pipeline.record import MaskRecord
from app.pipeline.types import EvidenceType
from app.study.display import CT_PRESETS, apply_window


@pytest.fixture(scope="module")
def ct_slice(shared_data, ct_tumour):
    """(HU slice, tumour mask) on the slice where the label is largest."""
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_image.nrrd")))
    return image[ct_tumour.slice_index].astype(np.int16), ct_tumour.mask


def rgb(pixels, window):
    return np.repeat(apply_window(pixels, window)[:, :, None], 3, axis=2)


def accepted(mask, name="tumour", ok=True):
    return MaskRecord(name, "litemedsam", "box", accepted=ok, confidence=0.9 if ok else 0.3, mask=mask)


def test_crop_is_cut_from_the_original_intensities(ct_slice):
    pixels, mask = ct_slice
    win = CT_PRESETS["mediastinum"]
    image = rgb(pixels, win)
    # A caller's overlay (mask painted red) must not leak into the crop.
    overlay = image.copy()
    overlay[mask] = (255, 0, 0)
    item = build_evidence(EvidenceType.CROP, pixels, win, overlay, [accepted(mask)], input_size=448)
    x0, y0, x1, y1 = item.crop_rect
    assert x1 - x0 == y1 - y0  # square
    bx0, by0, bx1, by1 = mask_bbox(mask)
    assert x0 <= bx0 and y0 <= by0 and x1 >= bx1 and y1 >= by1  # holds the whole mask
    assert (x1 - x0) >= 1.5 * max(bx1 - bx0, by1 - by0) - 1  # with the 25 % margin each side
    crop = item.images[1]
    assert crop.shape == (448, 448, 3)
    # The crop is the windowed ORIGINAL region, magnified: same as windowing the HU region ourselves.
    expected = resize_square(rgb(pixels[y0:y1, x0:x1], win), 448)
    assert np.array_equal(crop, expected)
    assert not (crop[..., 0] == 255).all() and (crop[..., 0] == crop[..., 1]).all()  # grey, no red
    # A different window gives different pixel values from the same HU (window honoured).
    lung = build_evidence(EvidenceType.CROP, pixels, CT_PRESETS["lung"], image, [accepted(mask)], input_size=448)
    assert lung.crop_rect == item.crop_rect and not np.array_equal(lung.images[1], crop)
    assert item.entities == ["tumour"] and item.fallback is None


def test_mask_is_a_separate_image_and_never_alters_the_slice(ct_slice):
    pixels, mask = ct_slice
    win = CT_PRESETS["mediastinum"]
    image = rgb(pixels, win)
    before = image.copy()
    other = np.zeros_like(mask)
    other[10:20, 10:20] = True
    rejected = np.zeros_like(mask)
    rejected[100:200, 100:200] = True
    masks = [accepted(mask), accepted(other, "node"), accepted(rejected, "noise", ok=False)]
    item = build_evidence(EvidenceType.MASK, pixels, win, image, masks)
    assert len(item.images) == 2
    assert np.array_equal(item.images[0], before) and np.array_equal(image, before)
    m = item.images[1]
    assert m.shape == image.shape and set(np.unique(m)) == {0, 255}
    assert np.array_equal(m[..., 0] == 255, mask | other)  # union of ACCEPTED masks only
    assert item.entities == ["tumour", "node"]


def test_global_is_the_image_alone(ct_slice):
    pixels, mask = ct_slice
    image = rgb(pixels, CT_PRESETS["lung"])
    item = build_evidence(EvidenceType.GLOBAL, pixels, CT_PRESETS["lung"], image, [accepted(mask)])
    assert len(item.images) == 1 and item.images[0] is image and item.crop_rect is None


@pytest.mark.parametrize("kind", [EvidenceType.CROP, EvidenceType.MASK])
def test_no_accepted_mask_falls_back_to_global(ct_slice, kind):
    pixels, mask = ct_slice
    image = rgb(pixels, CT_PRESETS["lung"])
    item = build_evidence(kind, pixels, CT_PRESETS["lung"], image, [accepted(mask, ok=False)])
    assert item.fallback == FALLBACK_REASON
    assert len(item.images) == 1 and item.crop_rect is None and item.entities == []


def test_crop_rect_clamps_and_respects_min_size():
    # A 3x3 mask in the corner: at least 32 px, shifted inside the 512x512 image.
    assert crop_rect((0, 0, 3, 3), (512, 512)) == (0, 0, 32, 32)
    assert crop_rect((508, 509, 512, 512), (512, 512)) == (480, 480, 512, 512)
    # Margin: a 40 px box grows to 60 px (25 % each side), centred.
    assert crop_rect((100, 200, 140, 240), (512, 512)) == (90, 190, 150, 250)
    # Larger than a narrow image: cut down to the image on that axis only.
    x0, y0, x1, y1 = crop_rect((0, 0, 20, 90), (20, 300))
    assert (x0, x1) == (0, 20) and y1 - y0 == 135
