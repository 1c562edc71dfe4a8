"""The three CARE evidence types built from a slice and its accepted masks.

- crop: a square zoom-in around the union of the accepted masks, cut from the ORIGINAL
  modality values and windowed afterwards (never from a rendered overlay), so the crop's
  pixels are exactly the windowed pixels of the slice, only magnified.
- mask: the union of the accepted masks as a separate black/white image. Pixel values in
  medical images carry meaning (HU), so the mask is a second model input and is never
  painted over the image.
- global: the image alone.

Every evidence item lists the model's image inputs in order: the whole slice first, then
the evidence image (crop or mask) when there is one.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from app.study.display import apply_window
from app.study.volume import Window

from .segmentation.confidence import mask_bbox
from .record import EvidenceItem, MaskRecord
from .types import EvidenceType

DEFAULT_MARGIN = 0.25  # of the masks' bounding-box side, on each side
MIN_CROP = 32  # px: below this a crop magnifies noise rather than anatomy
DEFAULT_INPUT_SIZE = 448  # InternVL tile size; the crop is resized to it

FALLBACK_REASON = "no mask reached the confidence threshold; using the global image"


def union_mask(masks: Sequence[MaskRecord], shape: tuple[int, int]) -> np.ndarray:
    """Union of the accepted masks as (H, W) bool."""
    out = np.zeros(shape, dtype=bool)
    for m in masks:
        if m.accepted and m.mask is not None:
            out |= m.mask.astype(bool, copy=False)
    return out


def crop_rect(
    bbox: tuple[int, int, int, int],
    image_size: tuple[int, int],
    margin: float = DEFAULT_MARGIN,
    min_size: int = MIN_CROP,
) -> tuple[int, int, int, int]:
    """A square around ``bbox`` with ``margin`` on each side, at least ``min_size``, clamped.

    ``image_size`` is (width, height). The square is shifted (not shrunk) to stay inside the
    image; it is only cut down when the image itself is smaller than the square.
    """
    width, height = image_size
    x0, y0, x1, y1 = bbox
    side = max(x1 - x0, y1 - y0)
    side = int(round(side * (1.0 + 2.0 * margin)))
    side = max(side, min_size)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0

    def place(center: float, extent: int) -> tuple[int, int]:
        s = min(side, extent)
        lo = int(round(center - s / 2.0))
        lo = min(max(lo, 0), extent - s)
        return lo, lo + s

    cx0, cx1 = place(cx, width)
    cy0, cy1 = place(cy, height)
    return cx0, cy0, cx1, cy1


def _to_rgb(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)


def crop_pixels(pixels: np.ndarray, window: Window, rect: tuple[int, int, int, int], invert: bool = False) -> np.ndarray:
    """The rectangle cut from the original modality values, then windowed to RGB uint8
    (inverted for MONOCHROME1, as the slice the reader and the model see)."""
    x0, y0, x1, y1 = rect
    return _to_rgb(apply_window(pixels[y0:y1, x0:x1], window, invert=invert))


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    # INTER_CUBIC to magnify (the usual case for a zoom-in), INTER_AREA to reduce.
    interp = cv2.INTER_CUBIC if img.shape[0] < size else cv2.INTER_AREA
    return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=interp))


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A bool mask as a black/white RGB image (its own model input)."""
    return _to_rgb(np.where(mask, np.uint8(255), np.uint8(0)))


def build_evidence(
    kind: EvidenceType,
    pixels: np.ndarray,
    window: Window,
    image_rgb: np.ndarray,
    masks: Sequence[MaskRecord],
    *,
    input_size: int = DEFAULT_INPUT_SIZE,
    margin: float = DEFAULT_MARGIN,
    min_size: int = MIN_CROP,
    invert: bool = False,
) -> EvidenceItem:
    """One evidence item for the slice (``invert``: MONOCHROME1, shown inverted).

    ``pixels`` are the slice's modality values [y, x] (or RGB [y, x, 3]); ``image_rgb`` is the
    same slice windowed with ``window`` (the model's first image). ``masks`` may include
    rejected ones; only accepted masks count.
    """
    kind = EvidenceType(kind)
    accepted = [m for m in masks if m.accepted and m.mask is not None]
    names = [m.entity for m in accepted]
    if kind is EvidenceType.GLOBAL:
        return EvidenceItem(kind, images=[image_rgb])

    union = union_mask(accepted, image_rgb.shape[:2])
    bbox = mask_bbox(union)
    if bbox is None:
        # Nothing reliable to point at: the evidence degrades to the global view (recorded).
        return EvidenceItem(kind, fallback=FALLBACK_REASON, images=[image_rgb])

    if kind is EvidenceType.MASK:
        return EvidenceItem(kind, entities=names, images=[image_rgb, mask_image(union)])

    h, w = image_rgb.shape[:2]
    rect = crop_rect(bbox, (w, h), margin=margin, min_size=min_size)
    crop = resize_square(crop_pixels(pixels, window, rect, invert=invert), input_size)
    return EvidenceItem(kind, crop_rect=rect, entities=names, images=[image_rgb, crop])
