"""Segment a slice's entities with one backend and judge every mask (CARE stage 2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from app.pipeline.types import Box, PipelineError, SegmenterBackend, SegPrompt

from .confidence import DEFAULT_TAU, score_mask
from .result import MaskResult


@dataclass(frozen=True)
class EntityPrompt:
    """An entity to segment: its name is the text prompt; a box (if any) the box prompt."""

    name: str
    box: Box | None = None


def _prompt_for(backend: SegmenterBackend, entity: EntityPrompt) -> tuple[SegPrompt, str]:
    if entity.box is not None and backend.supports_box:
        return SegPrompt(box=tuple(int(v) for v in entity.box)), "box"  # type: ignore[arg-type]
    if backend.supports_text:
        return SegPrompt(text=entity.name), "text"
    raise PipelineError(f"{backend.info.backend} needs a box for {entity.name!r} (it cannot read text prompts)")


def segment_entities(
    backend: SegmenterBackend,
    image_rgb: np.ndarray,
    key: str,
    entities: Sequence[EntityPrompt],
    tau: float = DEFAULT_TAU,
) -> list[MaskResult]:
    """One :class:`MaskResult` per entity, in order; the slice is embedded once for all of them."""
    if not entities:
        return []
    prompts = [_prompt_for(backend, e) for e in entities]
    backend.set_image(image_rgb, key)
    probs = backend.predict([p for p, _ in prompts])
    if len(probs) != len(entities):
        raise PipelineError(f"{backend.info.backend} returned {len(probs)} maps for {len(entities)} prompts")
    h, w = np.asarray(image_rgb).shape[:2]
    results = []
    for entity, (prompt, kind), prob in zip(entities, prompts, probs):
        if prob.shape != (h, w):
            raise PipelineError(f"{backend.info.backend} returned a {prob.shape} map for a {(h, w)} image")
        results.append(score_mask(prob, entity=entity.name, backend=backend.info.backend,
                                  prompt_type=kind, box=prompt.box, tau=tau))
    return results
