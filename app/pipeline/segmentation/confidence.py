"""Mask confidence from the entropy of the segmenter's probability map (CARE stage 2).

``C = 1 - H / log 2`` where ``H`` is the mean per-pixel binary entropy (natural log) of the
probability map, so C = 1 for a map of hard 0/1 decisions and C = 0 for a map of 0.5s.

Where H is averaged matters, so both are computed and recorded and the profile chooses which
one is compared with tau (``confidence_gate`` per segmenter, :class:`ConfidenceGate`):

* ``paper``: the mean over the whole map, the paper's formula as written. The confident
  background (most pixels of a slice, all near p = 0) drives H towards 0, so almost every
  non-empty mask passes.
* ``roi``: the mean over the mask's bounding box expanded by 10 % of its width/height on each
  side (the margin rounded up, so a one-pixel mask is judged with its border). That window is
  where an uncertain segmentation is uncertain, but its border-to-area ratio grows as the mask
  shrinks, so a well-segmented small lesion scores low (docs/calibration.md measures this).

The mask is ``p >= 0.5``; an empty mask has nothing to judge, so both are 0 and it is rejected.
A backend's object-level score (LiteMedSAM's IoU head, SAM3's presence score) is recorded
beside them and, when the profile sets ``min_object_score``, must reach it too.
"""
from __future__ import annotations

import math

import numpy as np

from app.pipeline.types import Box
from app.pipeline.vocab import ConfidenceGate

from .result import MaskResult, ProbabilityStats

DEFAULT_TAU = 0.70
DEFAULT_GATE = ConfidenceGate.ROI
MASK_THRESHOLD = 0.5
WINDOW_MARGIN = 0.10  # fraction of the bbox width/height added on each side
_EPS = 1e-7  # keeps log() finite at p = 0 or 1 (entropy there is 0 to float precision)


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Per-pixel binary entropy in nats (0 at p in {0, 1}, log 2 at p = 0.5)."""
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return -(q * np.log(q) + (1.0 - q) * np.log1p(-q))


def mask_bbox(mask: np.ndarray) -> Box | None:
    """Tight (x0, y0, x1, y1) box of a boolean mask, x1/y1 exclusive; None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def expand_box(box: Box, shape: tuple[int, int], margin: float = WINDOW_MARGIN) -> Box:
    """Grow ``box`` by ``margin`` x its width/height on each side, clipped to the image (H, W)."""
    x0, y0, x1, y1 = box
    dx = math.ceil(margin * (x1 - x0))
    dy = math.ceil(margin * (y1 - y0))
    h, w = shape
    return (max(0, x0 - dx), max(0, y0 - dy), min(w, x1 + dx), min(h, y1 + dy))


def confidence_of(probability: np.ndarray, window: Box) -> tuple[float, ProbabilityStats]:
    """``1 - H/log 2`` over ``window`` of the probability map, with the window's statistics."""
    x0, y0, x1, y1 = window
    region = np.asarray(probability, dtype=np.float64)[y0:y1, x0:x1]
    h = float(binary_entropy(region).mean())
    c = float(min(1.0, max(0.0, 1.0 - h / math.log(2.0))))
    stats = ProbabilityStats(
        mean=float(region.mean()), min=float(region.min()), max=float(region.max()), entropy=h
    )
    return c, stats


def whole_map_confidence(probability: np.ndarray) -> float:
    """``1 - H/log 2`` with H the mean over the whole map (the ``paper`` definition)."""
    h = float(binary_entropy(probability).mean())
    return float(min(1.0, max(0.0, 1.0 - h / math.log(2.0))))


def score_mask(
    probability: np.ndarray,
    *,
    entity: str,
    backend: str,
    prompt_type: str,
    box: Box | None = None,
    tau: float = DEFAULT_TAU,
    gate: ConfidenceGate | str = DEFAULT_GATE,
    object_score: float | None = None,
    object_score_kind: str = "",
    min_object_score: float = 0.0,
) -> MaskResult:
    """Threshold a probability map and judge it: the typed record for one entity.

    ``confidence`` is the value ``gate`` names; accepted = it reaches ``tau`` and, when
    ``min_object_score`` > 0, the backend's ``object_score`` reaches that too."""
    gate = ConfidenceGate(gate)
    prob = np.asarray(probability, dtype=np.float32)
    if prob.ndim != 2:
        raise ValueError(f"probability map must be (H, W), got shape {prob.shape}")
    mask = prob >= MASK_THRESHOLD
    bbox = mask_bbox(mask)
    common = dict(entity=entity, backend=backend, prompt_type=prompt_type, box=box, mask=mask, tau=tau,
                  probability=prob, gate=gate, object_score=object_score, object_score_kind=object_score_kind,
                  min_object_score=float(min_object_score))
    if bbox is None:
        return MaskResult(area_px=0, bbox=None, window=None, confidence=0.0, accepted=False, stats=None,
                          confidence_paper=0.0, confidence_roi=0.0, **common)
    window = expand_box(bbox, prob.shape)
    roi, stats = confidence_of(prob, window)
    paper = whole_map_confidence(prob)
    c = paper if gate == ConfidenceGate.PAPER else roi
    object_ok = min_object_score <= 0.0 or (object_score is not None and object_score >= min_object_score)
    return MaskResult(area_px=int(mask.sum()), bbox=bbox, window=window, confidence=c,
                      accepted=c >= tau and object_ok, stats=stats, confidence_paper=paper, confidence_roi=roi,
                      **common)
