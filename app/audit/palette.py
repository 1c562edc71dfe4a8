"""Overlay colours shared by the audit panel and the report (no OpenCV, no Qt: the panel
imports this at start-up), so a mask has the same colour on screen and in the PDF."""
from __future__ import annotations

# Distinct, colour-blind-tolerant hues (Tol / Kelly); yellow is reserved for the crop box.
PALETTE: list[tuple[int, int, int]] = [
    (230, 25, 75), (0, 130, 200), (60, 180, 75), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (170, 110, 40), (0, 128, 128), (128, 0, 0),
]
CROP_COLOUR = (255, 225, 25)


def mask_colour(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]
