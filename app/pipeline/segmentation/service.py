"""CARE stage 2 as one service: route each entity to a segmenter, embed the slice once, predict,
and judge every mask (confidence ``C = 1 - H/log 2`` against tau).

Every caller goes through here, so a mask is scored the same way and an embedding is cached
under the same key whoever asked: the engine's segment stage, the viewer's box tool
(app.ui.run_worker) and ``care-viewer segment``.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from app.pipeline.record import Entity, MaskRecord
from app.pipeline.types import Box, PipelineError, SegmenterBackend, SegPrompt
from app.pipeline.vocab import EntitySource, PromptType, Role

from .confidence import DEFAULT_TAU, score_mask
from .result import MaskResult

if TYPE_CHECKING:
    from app.study.volume import Window


# ------------------------------------------------------------------------------ cache key
def pixel_sha256(pixels: np.ndarray) -> str:
    """sha256 of the slice's modality pixels in C order (also the record's ``pixel_sha256``)."""
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def image_key(pixels: np.ndarray, window: "Window", *, digest: str | None = None) -> str:
    """The one embedding-cache key: which pixels, under which window (the windowed image is what
    the segmenter embeds). ``digest``: the pixels' :func:`pixel_sha256`, when already known."""
    return f"{digest or pixel_sha256(pixels)}:{window.center:g}:{window.width:g}"


# ------------------------------------------------------------------------------ scoring
def prompt_type_of(prompt: SegPrompt) -> PromptType:
    return PromptType.BOX if prompt.text is None else PromptType.TEXT


def mask_record(result: MaskResult) -> MaskRecord:
    """The run record's form of a scored mask."""
    box = result.box
    return MaskRecord(
        entity=result.entity, backend=result.backend, prompt_type=PromptType(result.prompt_type),
        box=tuple(int(v) for v in box) if box is not None else None,
        confidence=float(result.confidence), accepted=bool(result.accepted), tau=float(result.tau),
        area_px=int(result.area_px), bbox=tuple(result.bbox) if result.bbox is not None else None,
        prob_stats=result.stats.to_dict() if result.stats is not None else {},
        mask=np.asarray(result.mask, dtype=bool),
    )


def score_mask_record(prob: np.ndarray, entity: str, backend: str, prompt_type: str, box: Box | None,
                      tau: float) -> MaskRecord:
    """Confidence + tau of one probability map, as the record's MaskRecord."""
    return mask_record(score_mask(prob, entity=entity, backend=backend, prompt_type=prompt_type, box=box, tau=tau))


def predict_maps(backend: SegmenterBackend, image_rgb: np.ndarray, key: str,
                 prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
    """One probability map per prompt; the slice is embedded once (cached under ``key``)."""
    backend.set_image(image_rgb, key)
    probs = backend.predict(list(prompts))
    if len(probs) != len(prompts):
        raise PipelineError(f"returned {len(probs)} masks for {len(prompts)} prompts")
    shape = np.asarray(image_rgb).shape[:2]
    bad = [p.shape for p in probs if p.shape != shape]
    if bad:
        raise PipelineError(f"returned a {bad[0]} map for a {shape} image")
    return probs


def score_maps(backend: SegmenterBackend, probs: Sequence[np.ndarray], jobs: Sequence[tuple[str, SegPrompt]],
               tau: float) -> list[MaskResult]:
    return [score_mask(prob, entity=name, backend=backend.info.backend, prompt_type=prompt_type_of(prompt).value,
                       box=prompt.box, tau=tau)
            for (name, prompt), prob in zip(jobs, probs)]


# ------------------------------------------------------------------------------ routes
@dataclass
class Route:
    """One segmenter and the entities it is asked about (``prompts[i]`` for ``entities[i]``)."""

    role: Role
    backend: Any
    entities: list[Entity]
    prompts: list[SegPrompt]


@dataclass
class Segmented:
    masks: list[MaskRecord]
    model_seconds: float  # set_image + predict: what the stage clock books as model time


class SegmentationService:
    """The profile's segmenters (text route ``segmenter``, box route ``box_segmenter``) and tau.

    ``backends(role)`` returns the loaded backend for a role (None when the profile has none);
    it is asked only for the segmenters a call needs, so the box tool never loads SAM3 when
    LiteMedSAM takes the box.
    """

    def __init__(self, backends: Callable[[str], Any], tau: float = DEFAULT_TAU) -> None:
        self._backends, self.tau = backends, float(tau)

    @property
    def text_segmenter(self) -> Any:
        return self._backends(Role.SEGMENTER)

    @property
    def box_segmenter(self) -> Any:
        return self._backends(Role.BOX_SEGMENTER)

    def box_route(self) -> tuple[Role, Any] | None:
        """The box-prompted segmenter: LiteMedSAM, else a text segmenter that also takes boxes."""
        box = self.box_segmenter
        if box is not None and getattr(box, "supports_box", False):
            return Role.BOX_SEGMENTER, box
        text = self.text_segmenter
        if text is not None and getattr(text, "supports_box", False):
            return Role.SEGMENTER, text
        return None

    def routes(self, entities: Sequence[Entity]) -> tuple[list[Route], list[str]]:
        """Text route for proposed entities when configured; box route for every entity with a box.
        Returns the routes and the warnings for what no route can handle."""
        text = self.text_segmenter
        self.box_segmenter  # loaded up front too, after the text route (the stage has always loaded both)
        routes: list[Route] = []
        warnings: list[str] = []
        if text is not None and getattr(text, "supports_text", False):
            named = [e for e in entities if e.source != EntitySource.CLINICIAN]
            if named:
                routes.append(Route(Role.SEGMENTER, text, named, [SegPrompt(text=e.name) for e in named]))
        boxed = [e for e in entities if e.box is not None]
        if boxed:
            box_route = self.box_route()
            if box_route is not None:
                routes.append(Route(box_route[0], box_route[1], boxed, [SegPrompt(box=e.box) for e in boxed]))
            else:
                warnings.append("boxes were given but the profile has no box-prompted segmenter")
        if not routes:
            warnings.append("no segmenter can handle these entities (no text route and no boxes)")
        return routes, warnings

    def segment(self, backend: Any, image_rgb: np.ndarray, key: str,
                jobs: Sequence[tuple[str, SegPrompt]]) -> Segmented:
        """Scored masks for ``jobs`` (entity name, prompt) on one slice, in order."""
        t0 = time.perf_counter()
        probs = predict_maps(backend, image_rgb, key, [p for _, p in jobs])
        seconds = time.perf_counter() - t0
        return Segmented([mask_record(r) for r in score_maps(backend, probs, jobs, self.tau)], seconds)

    def segment_box(self, image_rgb: np.ndarray, key: str, box: Box, name: str) -> MaskRecord:
        """One clinician box on one slice (the viewer's box tool); ``seconds`` is the whole call."""
        route = self.box_route()
        if route is None:
            raise PipelineError("no box-prompted segmenter")
        t0 = time.perf_counter()
        (mask,) = self.segment(route[1], image_rgb, key, [(name, SegPrompt(box=tuple(int(v) for v in box)))]).masks
        mask.seconds = time.perf_counter() - t0
        return mask


# ------------------------------------------------------------------------------ one backend
@dataclass(frozen=True)
class EntityPrompt:
    """An entity to segment: its name is the text prompt; a box (if any) the box prompt."""

    name: str
    box: Box | None = None


def _prompt_for(backend: SegmenterBackend, entity: EntityPrompt) -> SegPrompt:
    if entity.box is not None and backend.supports_box:
        return SegPrompt(box=tuple(int(v) for v in entity.box))  # type: ignore[arg-type]
    if backend.supports_text:
        return SegPrompt(text=entity.name)
    raise PipelineError(f"{backend.info.backend} needs a box for {entity.name!r} (it cannot read text prompts)")


def segment_entities(
    backend: SegmenterBackend,
    image_rgb: np.ndarray,
    key: str,
    entities: Sequence[EntityPrompt],
    tau: float = DEFAULT_TAU,
) -> list[MaskResult]:
    """One :class:`MaskResult` per entity with one backend (its box when it has one and the backend
    takes boxes, else its name), in order; the slice is embedded once for all of them."""
    if not entities:
        return []
    jobs = [(e.name, _prompt_for(backend, e)) for e in entities]
    try:
        probs = predict_maps(backend, image_rgb, key, [p for _, p in jobs])
    except PipelineError as exc:
        raise PipelineError(f"{backend.info.backend} {exc}") from exc
    return score_maps(backend, probs, jobs, tau)
