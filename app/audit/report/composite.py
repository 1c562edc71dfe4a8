"""The report's main figure: the slice with mask overlays and the zoom-in crop rectangle,
composited in numpy (the same pixels the models saw, nothing re-windowed)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from app.pipeline.record import Entity, EvidenceItem, MaskRecord
from app.pipeline.types import EvidenceType
from app.pipeline.vocab import EntitySource

from ..palette import CROP_COLOUR, PALETTE, mask_colour

__all__ = ["BOX_COLOUR", "CROP_COLOUR", "PALETTE", "LegendEntry", "clinician_boxes", "composite", "crop_rects",
           "mask_colour"]

FILL_ALPHA = 0.38
BOX_COLOUR = (255, 255, 255)  # the clinician's drawn box: dashed white, apart from every mask hue


@dataclass(frozen=True)
class LegendEntry:
    label: str
    colour: tuple[int, int, int]
    confidence: float | None
    accepted: bool | None  # None: not a mask (the crop rectangle)
    drawn: bool  # False when the mask image is missing
    note: str = ""  # what a non-mask entry is


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[:, :, :3])


def crop_rects(evidence: Sequence[EvidenceItem]) -> list[tuple[int, int, int, int]]:
    return [tuple(e.crop_rect) for e in evidence if e.type == EvidenceType.CROP and e.crop_rect and not e.fallback]


def clinician_boxes(entities: Sequence[Entity]) -> list[tuple[int, int, int, int]]:
    return list(dict.fromkeys(tuple(int(v) for v in e.box) for e in entities
                              if e.source == EntitySource.CLINICIAN and e.box))


def _dashed_rect(img: np.ndarray, box: tuple[int, int, int, int], colour: tuple[int, int, int], t: int) -> None:
    x0, y0, x1, y1 = box
    x1, y1 = x1 - 1, y1 - 1
    dash = max(3, 3 * t)
    for a, b, fixed, horizontal in ((x0, x1, y0, True), (x0, x1, y1, True), (y0, y1, x0, False), (y0, y1, x1, False)):
        starts = list(range(a, b + 1, 2 * dash)) + [max(a, b - dash + 1)]  # the corners are always drawn
        for s in starts:
            e = min(s + dash - 1, b)
            p0, p1 = ((s, fixed), (e, fixed)) if horizontal else ((fixed, s), (fixed, e))
            cv2.line(img, p0, p1, colour, t, lineType=cv2.LINE_8)


def composite(
    slice_rgb: np.ndarray, masks: Sequence[MaskRecord], evidence: Sequence[EvidenceItem] = (),
    entities: Sequence[Entity] = (),
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
                                  CROP_COLOUR, None, None, True, "evidence region given to the VQA model"))
    # The clinician's boxes are input, drawn whatever the run reached (a cancelled run included).
    boxes = clinician_boxes(entities)
    for box in boxes:
        _dashed_rect(img, box, BOX_COLOUR, thick)
    if boxes:
        legend.append(LegendEntry("clinician box" if len(boxes) == 1 else f"clinician boxes ({len(boxes)})",
                                  BOX_COLOUR, None, None, True, "drawn by the clinician (dashed)"))
    return img, legend
