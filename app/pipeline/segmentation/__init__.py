"""CARE stage 2: referring segmentation of the proposed entities, with entropy confidence.

Backends: LiteMedSAM (box prompts, weights bundled, every profile) and SAM3 (text prompts).
"""
from __future__ import annotations

from .confidence import DEFAULT_TAU, binary_entropy, expand_box, mask_bbox, score_mask
from .factory import build_segmenter, release_segmenters
from .result import MaskResult, ProbabilityStats
from .service import EntityPrompt, SegmentationService, image_key, score_mask_record, segment_entities

__all__ = [
    "DEFAULT_TAU",
    "EntityPrompt",
    "MaskResult",
    "ProbabilityStats",
    "SegmentationService",
    "binary_entropy",
    "build_segmenter",
    "expand_box",
    "image_key",
    "mask_bbox",
    "release_segmenters",
    "score_mask",
    "score_mask_record",
    "segment_entities",
]
