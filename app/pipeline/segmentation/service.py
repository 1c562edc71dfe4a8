"""CARE stage 2 as one service: route each entity to a segmenter, embed the slice once, predict,
and judge every mask (confidence ``C = 1 - H/log 2`` against tau).

How a segmenter's masks are judged (tau, which confidence gates, a minimum object score) is
its profile role's :class:`~app.pipeline.profile_options.SegmenterOptions`; a run's explicit
tau replaces the profile's for every segmenter.

Every caller goes through here, so a mask is scored the same way and an embedding is cached
under the same key whoever asked: the engine's segment stage, the viewer's box tool
(app.ui.run_worker) and ``care-viewer segment``.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from app.pipeline.profile_options import SegmenterOptions, typed_options
from app.pipeline.record import Entity, MaskRecord
from app.pipeline.types import Box, PipelineError, SegmenterBackend, SegPrompt
from app.pipeline.vocab import ConfidenceGate, EntitySource, PromptType, Role

from .confidence import DEFAULT_GATE, DEFAULT_TAU, score_mask
from .result import MaskResult

if TYPE_CHECKING:
    from app.pipeline.profiles import Profile
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
        confidence_paper=float(result.confidence_paper), confidence_roi=float(result.confidence_roi),
        confidence_gate=result.gate, object_score=result.object_score,
        object_score_kind=result.object_score_kind, min_object_score=float(result.min_object_score),
        area_px=int(result.area_px), bbox=tuple(result.bbox) if result.bbox is not None else None,
        prob_stats=result.stats.to_dict() if result.stats is not None else {},
        mask=np.asarray(result.mask, dtype=bool),
    )


@dataclass(frozen=True)
class Judging:
    """How one segmenter's masks are judged."""

    tau: float = DEFAULT_TAU
    gate: ConfidenceGate = DEFAULT_GATE
    min_object_score: float = 0.0

    @classmethod
    def from_options(cls, options: dict[str, Any], tau: float | None = None) -> "Judging":
        """From a role's options; ``tau`` (a run's explicit one) replaces the profile's."""
        o = typed_options(options, SegmenterOptions)
        return cls(float(o.tau if tau is None else tau), ConfidenceGate(o.confidence_gate), float(o.min_object_score))


def score_mask_record(prob: np.ndarray, entity: str, backend: str, prompt_type: str, box: Box | None,
                      tau: float, gate: ConfidenceGate | str = DEFAULT_GATE, object_score: float | None = None,
                      object_score_kind: str = "", min_object_score: float = 0.0) -> MaskRecord:
    """Confidence + tau of one probability map, as the record's MaskRecord."""
    return mask_record(score_mask(prob, entity=entity, backend=backend, prompt_type=prompt_type, box=box, tau=tau,
                                  gate=gate, object_score=object_score, object_score_kind=object_score_kind,
                                  min_object_score=min_object_score))


def predict_scored(backend: SegmenterBackend, prompts: Sequence[SegPrompt]
                   ) -> tuple[list[np.ndarray], list[float | None]]:
    """Maps and the backend's object scores (None each for a backend without ``predict_scored``)."""
    scored = getattr(backend, "predict_scored", None)
    if scored is not None:
        probs, scores = scored(list(prompts))
        return list(probs), [None if v is None else float(v) for v in scores]
    probs = backend.predict(list(prompts))
    return probs, [None] * len(probs)


# Keyed by id(): backends need not be hashable; a reused id after a backend is freed only
# shares a lock, which is harmless. A handful of backends per process.
_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _backend_lock(backend: Any) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(backend), threading.Lock())


def predict_maps(backend: SegmenterBackend, image_rgb: np.ndarray, key: str,
                 prompts: Sequence[SegPrompt]) -> tuple[list[np.ndarray], list[float | None]]:
    """One probability map (and object score) per prompt; the slice is embedded once (cached under ``key``)."""
    # set_image and predict share the backend's current image: two threads (concurrent eval
    # items, the box tool beside a run) must not interleave them.
    with _backend_lock(backend):
        backend.set_image(image_rgb, key)
        probs, scores = predict_scored(backend, prompts)
    if len(probs) != len(prompts):
        raise PipelineError(f"returned {len(probs)} masks for {len(prompts)} prompts")
    shape = np.asarray(image_rgb).shape[:2]
    bad = [p.shape for p in probs if p.shape != shape]
    if bad:
        raise PipelineError(f"returned a {bad[0]} map for a {shape} image")
    return probs, scores


def score_maps(backend: SegmenterBackend, maps: tuple[list[np.ndarray], list[float | None]],
               jobs: Sequence[tuple[str, SegPrompt]], judging: Judging) -> list[MaskResult]:
    probs, scores = maps
    kind = str(getattr(backend, "object_score_kind", ""))
    return [score_mask(prob, entity=name, backend=backend.info.backend, prompt_type=prompt_type_of(prompt).value,
                       box=prompt.box, tau=judging.tau, gate=judging.gate, object_score=score,
                       object_score_kind=kind if score is not None else "", min_object_score=judging.min_object_score)
            for (name, prompt), prob, score in zip(jobs, probs, scores)]


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

    def __init__(self, backends: Callable[[str], Any], tau: float | None = DEFAULT_TAU,
                 profile: "Profile | None" = None) -> None:
        # tau None: each segmenter's profile tau; a number: that tau for every segmenter.
        self._backends, self.tau, self._profile = backends, (None if tau is None else float(tau)), profile

    def judging(self, role: Role | str) -> Judging:
        """The profile's judging of ``role``'s masks, with the run's explicit tau if any."""
        spec = self._profile.get(str(Role(role).value)) if self._profile is not None else None
        return Judging.from_options(spec.options if spec is not None else {}, self.tau)

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
            named = [e for e in entities if e.source == EntitySource.PROPOSED]  # boxes only for drawn/localised
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
                jobs: Sequence[tuple[str, SegPrompt]], role: Role | str | None = None) -> Segmented:
        """Scored masks for ``jobs`` (entity name, prompt) on one slice, in order; ``role``: the
        profile role whose judging applies (default: the role serving ``backend``)."""
        t0 = time.perf_counter()
        maps = predict_maps(backend, image_rgb, key, [p for _, p in jobs])
        seconds = time.perf_counter() - t0
        judging = self.judging(role if role is not None else self._role_of(backend))
        return Segmented([mask_record(r) for r in score_maps(backend, maps, jobs, judging)], seconds)

    def _role_of(self, backend: Any) -> Role:
        return Role.BOX_SEGMENTER if backend is not None and backend is self.box_segmenter else Role.SEGMENTER

    def segment_box(self, image_rgb: np.ndarray, key: str, box: Box, name: str) -> MaskRecord:
        """One clinician box on one slice (the viewer's box tool); ``seconds`` is the whole call."""
        route = self.box_route()
        if route is None:
            raise PipelineError("no box-prompted segmenter")
        t0 = time.perf_counter()
        (mask,) = self.segment(route[1], image_rgb, key, [(name, SegPrompt(box=tuple(int(v) for v in box)))],
                               route[0]).masks
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
    judging: Judging | None = None,
) -> list[MaskResult]:
    """One :class:`MaskResult` per entity with one backend (its box when it has one and the backend
    takes boxes, else its name), in order; the slice is embedded once for all of them."""
    if not entities:
        return []
    jobs = [(e.name, _prompt_for(backend, e)) for e in entities]
    try:
        maps = predict_maps(backend, image_rgb, key, [p for _, p in jobs])
    except PipelineError as exc:
        raise PipelineError(f"{backend.info.backend} {exc}") from exc
    return score_maps(backend, maps, jobs, judging if judging is not None else Judging(tau=float(tau)))
