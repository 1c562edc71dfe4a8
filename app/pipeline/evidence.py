"""The three CARE evidence types built from a slice and its accepted masks.

- crop: a zoom-in around ONE accepted mask (the most confident, or the entity the question
  names: :class:`~app.pipeline.vocab.CropEntity`); a crop around the union of several
  entities would be nearly the whole slice. The crop is square in millimetres (a 0.5 x 1.0 mm
  pixel grid gives a rectangle twice as wide as tall in pixels, resized to a square input so
  the model sees it isotropic), square in pixels on an uncalibrated image; ``DEFAULT_MARGIN``
  of the mask's larger side is added on each side. It is cut from the ORIGINAL modality values
  and windowed afterwards (never from a rendered overlay).
- mask: the union of the accepted masks as a separate black/white image. Pixel values in
  medical images carry meaning (HU), so the mask is a second model input and is never
  painted over the image.
- global: the image alone, or (``GlobalEvidence.ONES_MASK``, the paper's form) the image and
  an all-ones mask, so every evidence pass has the same two-image shape.

Every evidence item lists the model's image inputs in order: the whole slice first, then
the evidence image (crop or mask) when there is one. A crop/mask item with no accepted mask
falls back to exactly the global evidence (same images), so its request equals the global one.
"""
from __future__ import annotations

import re
from typing import Sequence

import cv2
import numpy as np

from app.study.display import apply_window
from app.study.volume import Window

from .segmentation.confidence import mask_bbox
from .record import EvidenceItem, MaskRecord
from .types import EvidenceType
from .vocab import CropChoice, CropEntity, CropUnit, GlobalEvidence

DEFAULT_MARGIN = 0.25  # of the mask's larger bounding-box side (in mm when calibrated), on each side
MIN_CROP = 32  # px along the finer axis: below this a crop magnifies noise rather than anatomy
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
    spacing: tuple[float, float] | None = None,
) -> tuple[int, int, int, int]:
    """A square around ``bbox`` with ``margin`` on each side, at least ``min_size``, clamped.

    ``image_size`` is (width, height); ``spacing`` is (column, row) mm per pixel: the square
    is then square in millimetres (None: in pixels). The square is shifted (not shrunk) to stay
    inside the image; it is only cut down when the image itself is smaller than the square.
    """
    width, height = image_size
    x0, y0, x1, y1 = bbox
    sx, sy = spacing or (1.0, 1.0)
    side = max((x1 - x0) * sx, (y1 - y0) * sy) * (1.0 + 2.0 * margin)
    side = max(side, min_size * min(sx, sy))
    sides = (max(1, int(round(side / sx))), max(1, int(round(side / sy))))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0

    def place(center: float, extent: int, axis: int) -> tuple[int, int]:
        s = min(sides[axis], extent)
        lo = int(round(center - s / 2.0))
        lo = min(max(lo, 0), extent - s)
        return lo, lo + s

    cx0, cx1 = place(cx, width, 0)
    cy0, cy1 = place(cy, height, 1)
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


def ones_image(shape: tuple[int, ...]) -> np.ndarray:
    """The paper's global evidence: an all-ones mask (all white) the size of the slice."""
    return np.full((shape[0], shape[1], 3), 255, dtype=np.uint8)


def _names(question: str, entity: str) -> bool:
    words = [w for w in re.split(r"\W+", entity.lower()) if w]
    return bool(words) and re.search(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", question.lower()) is not None


def crop_mask(masks: Sequence[MaskRecord], rule: CropEntity, question: str) -> tuple[MaskRecord, CropChoice] | None:
    """The accepted mask the crop is around and why: the most confident one, or (``rule``
    NAMED_OR_MOST_CONFIDENT) the most confident of those whose entity the question names."""
    accepted = [m for m in masks if m.accepted and m.mask is not None and m.mask.any()]
    if not accepted:
        return None
    if CropEntity(rule) is CropEntity.NAMED_OR_MOST_CONFIDENT:
        named = [m for m in accepted if _names(question, m.entity)]
        if named:
            return max(named, key=lambda m: m.confidence), CropChoice.NAMED
    return max(accepted, key=lambda m: m.confidence), CropChoice.MOST_CONFIDENT


def global_item(kind: EvidenceType, image_rgb: np.ndarray, mode: GlobalEvidence, fallback: str | None = None) -> EvidenceItem:
    """The global evidence (also what a crop/mask item falls back to, with ``fallback``)."""
    if GlobalEvidence(mode) is GlobalEvidence.ONES_MASK:
        return EvidenceItem(kind, fallback=fallback, ones_mask=True, images=[image_rgb, ones_image(image_rgb.shape)])
    return EvidenceItem(kind, fallback=fallback, images=[image_rgb])


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
    spacing: tuple[float, float] | None = None,
    global_evidence: GlobalEvidence = GlobalEvidence.IMAGE,
    crop_entity: CropEntity = CropEntity.MOST_CONFIDENT,
    question: str = "",
) -> EvidenceItem:
    """One evidence item for the slice (``invert``: MONOCHROME1, shown inverted).

    ``pixels`` are the slice's modality values [y, x] (or RGB [y, x, 3]); ``image_rgb`` is the
    same slice windowed with ``window`` (the model's first image). ``masks`` may include
    rejected ones; only accepted masks count. ``spacing``: (column, row) mm per pixel, None
    when uncalibrated; ``question`` is read only to find the entity it names.
    """
    kind = EvidenceType(kind)
    accepted = [m for m in masks if m.accepted and m.mask is not None]
    names = [m.entity for m in accepted]
    if kind is EvidenceType.GLOBAL:
        return global_item(kind, image_rgb, global_evidence)

    union = union_mask(accepted, image_rgb.shape[:2])
    chosen = crop_mask(accepted, crop_entity, question)
    if mask_bbox(union) is None or chosen is None:
        # Nothing reliable to point at: the evidence degrades to the global view (recorded).
        return global_item(kind, image_rgb, global_evidence, FALLBACK_REASON)

    if kind is EvidenceType.MASK:
        return EvidenceItem(kind, entities=names, images=[image_rgb, mask_image(union)])

    target, why = chosen
    h, w = image_rgb.shape[:2]
    rect = crop_rect(mask_bbox(target.mask), (w, h), margin=margin, min_size=min_size, spacing=spacing)
    crop = resize_square(crop_pixels(pixels, window, rect, invert=invert), input_size)
    mm = None if spacing is None else ((rect[2] - rect[0]) * spacing[0], (rect[3] - rect[1]) * spacing[1])
    return EvidenceItem(kind, crop_rect=rect, entities=[target.entity], images=[image_rgb, crop],
                        crop_entity=target.entity, crop_choice=why, crop_confidence=float(target.confidence),
                        crop_mm=mm, crop_square_in=CropUnit.PIXELS if spacing is None else CropUnit.MM,
                        crop_margin=float(margin))
