"""The report's main figure: the slice with mask overlays and the zoom-in crop rectangle,
composited in numpy (the same pixels the models saw, nothing re-windowed)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from app.pipeline.record import EvidenceItem, MaskRecord
from app.pipeline.types import EvidenceType

from ..palette import CROP_COLOUR, PALETTE, mask_colour

__all__ = ["CROP_COLOUR", "PALETTE", "LegendEntry", "composite", "crop_rects", "mask_colour"]

FILL_ALPHA = 0.38


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: tuple[int, int, int]
    confidence: float | None
    accepted: bool | None  # None: not a mask (the crop rectangle)
    drawn: bool  # False when the mask image is missing


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def crop_rects(evidence: Sequence[EvidenceItem]) -> list[tuple[int, int, int, int]]:
    return [tuple(e.crop_rect) for e in evidence if e.type == EvidenceType.CROP and e.crop_rect and not e.fallback]


def composite(
    slice_rgb: np.ndarray, masks: Sequence[MaskRecord], evidence: Sequence[EvidenceItem] = ()
) -> tuple[np.ndarray, list[LegendEntry]]:
    """(RGB overlay image, legend). Accepted masks are filled and outlined; discarded masks
    (below tau) are only outlined, thinly, so they stay visible for the audit without
    looking like findings."""
    base = _as_rgb(slice_rgb)
    h, w = base.shape[:2]
    out = base.astype(np.float32)
    thick = max(1, round(max(h, w) / 256))
    legend: list[LegendEntry] = []
    outlines: list[tuple[np.ndarray, tuple[int, int, int], int]] = []
    for i, m in enumerate(masks):
        colour = mask_colour(i)
        mask = None if m.mask is None else np.asarray(m.mask).astype(bool)
        drawn = mask is not None and mask.shape == (h, w)
        if drawn:
            if m.accepted:
                out[mask] = out[mask] * (1 - FILL_ALPHA) + np.asarray(colour, np.float32) * FILL_ALPHA
            outlines.append((mask, colour, thick + 1 if m.accepted else thick))
        legend.append(LegendEntry(m.entity, colour, float(m.confidence), bool(m.accepted), drawn))
    img = np.clip(out, 0, 255).astype(np.uint8)
    for mask, colour, t in outlines:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(img, contours, -1, colour, t, lineType=cv2.LINE_8)
    rects = list(dict.fromkeys(crop_rects(evidence)))  # a coordinator may crop more than once
    for x0, y0, x1, y1 in rects:
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1) - 1, int(y1) - 1), CROP_COLOUR, thick + 1)
    if rects:
        legend.append(LegendEntry("zoom-in crop" if len(rects) == 1 else f"zoom-in crops ({len(rects)})",
                                  CROP_COLOUR, None, None, True))
    return img, legend
