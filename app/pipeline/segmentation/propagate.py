"""A 3-D lesion from one box (or one text prompt): propagate it slice by slice through the volume.

The drawn slice is segmented from the clinician's box; each neighbour is then prompted with the
previous slice's mask box grown by a margin, in both directions, until a stopping rule fires.
The rules (:class:`PropagationRules`) look at what the segmenter and the image say about the new
mask: LiteMedSAM's predicted IoU, the mask confidence ``C = 1 - H/log 2`` (the service's gate),
the area change against the previous slice, the overlap with the previous mask (a mask that
jumps to a neighbouring structure) and the intensity inside the mask against the seed slice.
The slice where a rule fires is recorded (with why) but not added to the lesion. On the slices
it keeps, the lesion holds the mask's pixels whose value is consistent with the seed mask's
(``pixel_z``): the segmenter's masks include the partial-volume rim around a lesion.

Costs: each slice is embedded once (cached under the engine's :func:`image_key`, so a later run
or box on that slice reuses it) and only slices the lesion reaches, plus the one each end
rejected, are embedded. ``progress`` is called after every slice; ``cancel`` is checked between
slices (raises :class:`~app.pipeline.types.Cancelled`).

:func:`propagate_text` does the same with the profile's text segmenter (SAM3): the prompt is the
entity's name on every slice, so only the rules that read the mask apply, plus SAM3's presence gate.

Boxes and per-slice masks are in the display frame (as ``segment --box``); the 3-D mask is in
array layout ``[z, y, x]`` on the volume's own grid (``DisplayFrame.to_array`` per slice).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from app.pipeline.types import Box, Cancelled, PipelineError, SegPrompt
from app.pipeline.vocab import StopReason
from app.study.display import slice_rgb
from app.study.lesion_geometry import LesionSize, lesion_size

from .confidence import expand_box, mask_bbox
from .service import Judging, SegmentationService, image_key, predict_maps, score_maps

if TYPE_CHECKING:
    from app.study.display_frame import DisplayFrame
    from app.study.volume import Volume, Window


@dataclass(frozen=True)
class PropagationRules:
    """When propagation stops. A threshold of None switches that rule off."""

    name: str = "care"
    margin: float = 0.10  # the next prompt: previous mask box + this fraction of its size per side
    margin_px: int = 2  # ... and at least this many pixels
    min_iou_pred: float | None = 0.60  # the segmenter's own IoU estimate (LiteMedSAM's IoU head)
    # C of the service's gate (roi by default), a floor only: C_roi is low on small, well-segmented
    # lesions (docs/calibration.md), and every kept slice of both measured lesions has C >= 0.53.
    min_confidence: float | None = 0.50
    min_area_ratio: float | None = 0.25  # area / previous slice's area
    max_area_ratio: float | None = 1.6
    min_overlap: float | None = 0.30  # |mask & previous| / |mask|
    intensity_z: float | None = 2.0  # |mean inside - seed mean| <= z x seed SD
    # The lesion keeps a mask pixel only if its value lies within pixel_z robust SDs (1.4826 x MAD)
    # of the seed mask's median: LiteMedSAM's masks take in the partial-volume rim around a lesion.
    pixel_z: float | None = 2.5
    max_slices: int = 64  # per direction: a bound on the cost whatever the rules say
    # Re-prompt a slice with its own mask's box (+ margin_px) up to this many times, keeping the
    # mask the IoU head rates higher: the slice's embedding is reused, so this costs decoder time only.
    refine: int = 0
    refine_seed: bool = False  # also on the drawn slice (the clinician's box is otherwise taken as drawn)

    @classmethod
    def naive(cls) -> "PropagationRules":
        """The issue's baseline: box from the previous mask, stop when the area drops below a
        quarter or grows past 1.1x (nothing else is looked at)."""
        return cls(name="naive", margin=0.0, margin_px=0, min_iou_pred=None, min_confidence=None,
                   min_area_ratio=0.25, max_area_ratio=1.1, min_overlap=None, intensity_z=None, pixel_z=None,
                   refine=0)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class SliceResult:
    """One slice the propagation looked at. ``stop_reason`` None: the slice is part of the lesion.
    ``area_px``, ``confidence``, ``mean``: of the segmenter's mask, which the rules judge (the
    lesion keeps its intensity-consistent pixels, ``kept_px``)."""

    index: int
    confidence: float  # C of the service's gate
    iou_pred: float | None  # the segmenter's object score (None for a backend without one)
    area_px: int
    stop_reason: StopReason | None = None
    mean: float = 0.0  # modality value inside the mask (HU on CT)
    box: Box | None = None  # the prompt whose mask was kept (display frame)
    kept_px: int = 0  # pixels of the lesion on this slice (0 unless included)

    @property
    def included(self) -> bool:
        return self.stop_reason is None

    def to_dict(self) -> dict[str, Any]:
        return {"slice": self.index, "included": self.included, "confidence": round(self.confidence, 4),
                "iou_pred": None if self.iou_pred is None else round(self.iou_pred, 4), "area_px": self.area_px,
                "kept_px": self.kept_px, "mean": round(self.mean, 2), "box": None if self.box is None else list(self.box),
                "stop_reason": None if self.stop_reason is None else self.stop_reason.value}


@dataclass(frozen=True, eq=False)
class Lesion3D:
    """The propagated lesion. ``mask``: bool ``[z, y, x]`` on the volume's grid; ``per_slice``:
    every slice looked at, in slice order (the rejected end slices with their stop reason);
    ``stop_reasons``: (towards slice 0, towards the last slice)."""

    mask: np.ndarray
    per_slice: tuple[SliceResult, ...]
    seed: int
    first: int
    last: int
    size: LesionSize
    stop_reasons: tuple[StopReason, StopReason]
    rules: PropagationRules
    backend: str
    embedded: int  # slices given to the segmenter (each once)
    seconds: float

    @property
    def volume_ml(self) -> float | None:
        return self.size.volume_ml

    @property
    def extent_slices(self) -> int:
        return self.size.extent_slices

    @property
    def extent_mm(self) -> float | None:
        return self.size.extent_mm

    @property
    def largest_diameter_mm(self) -> float | None:
        return self.size.largest_diameter_mm

    @property
    def included(self) -> tuple[SliceResult, ...]:
        return tuple(s for s in self.per_slice if s.included)

    def trimmed(self, first: int, last: int, volume: "Volume") -> "Lesion3D":
        """The lesion with slices outside ``first..last`` removed (the clinician's trim); an end
        that moved records :attr:`StopReason.TRIMMED`."""
        first, last = max(first, self.first), min(last, self.last)
        if first > last or not first <= self.seed <= last:
            raise ValueError(f"trim {first}..{last} must keep the drawn slice {self.seed}")
        mask = self.mask.copy()
        mask[:first] = False
        mask[last + 1:] = False
        per_slice = tuple(s if first <= s.index <= last or not s.included
                          else replace(s, stop_reason=StopReason.TRIMMED, kept_px=0) for s in self.per_slice)
        reasons = (StopReason.TRIMMED if first != self.first else self.stop_reasons[0],
                   StopReason.TRIMMED if last != self.last else self.stop_reasons[1])
        return replace(self, mask=mask, per_slice=per_slice, first=first, last=last,
                       size=lesion_size(mask, volume), stop_reasons=reasons)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the figures ``segment --propagate --json`` prints (no arrays)."""
        s = self.size
        return {
            "volume_ml": None if s.volume_ml is None else round(s.volume_ml, 4),
            "voxels": s.voxels,
            "units": "mm" if s.calibrated else "voxels (the file has no spacing)",
            "slices": [self.first, self.last],
            "seed_slice": self.seed,
            "extent_slices": s.extent_slices,
            "extent_mm": None if s.extent_mm is None else round(s.extent_mm, 3),
            "largest_diameter_mm": None if s.largest_diameter_mm is None else round(s.largest_diameter_mm, 2),
            "largest_diameter_px": round(s.largest_diameter_px, 2),
            "diameter_slice": s.diameter_slice,
            "stop_reasons": {"towards_first": self.stop_reasons[0].value, "towards_last": self.stop_reasons[1].value},
            "per_slice": [p.to_dict() for p in self.per_slice],
            "rules": self.rules.to_dict(),
            "backend": self.backend,
            "slices_embedded": self.embedded,
            "seconds": round(self.seconds, 3),
        }


ProgressFn = Callable[[SliceResult], None]


class _Segmenter:
    """One slice, one box -> scored mask, through the service's box route and judging."""

    def __init__(self, service_or_segmenter: Any) -> None:
        if isinstance(service_or_segmenter, SegmentationService):
            route = service_or_segmenter.box_route()
            if route is None:
                raise PipelineError("no box-prompted segmenter in this profile")
            self.backend, self.judging = route[1], service_or_segmenter.judging(route[0])
        else:
            self.backend, self.judging = service_or_segmenter, Judging()
        if not getattr(self.backend, "supports_box", False):
            raise PipelineError(f"{self.backend.info.backend} cannot take a box prompt")
        self.keys: set[str] = set()

    @property
    def embedded(self) -> int:
        return len(self.keys)

    def __call__(self, image: np.ndarray, key: str, box: Box, refine: int = 0, margin_px: int = 0):
        """(mask result, the box that produced it)."""
        self.keys.add(key)
        best, best_box = self._one(image, key, box), box
        for _ in range(refine):
            if best.area_px == 0:
                break
            x0, y0, x1, y1 = best.bbox
            h, w = best.mask.shape
            again = (max(0, x0 - margin_px), max(0, y0 - margin_px), min(w, x1 + margin_px), min(h, y1 + margin_px))
            if again == best_box:
                break
            r = self._one(image, key, again)  # the cached embedding: decoder only
            if (r.object_score or 0.0) < (best.object_score or 0.0):
                break
            best, best_box = r, again
        return best, best_box

    def _one(self, image: np.ndarray, key: str, box: Box):
        maps = predict_maps(self.backend, image, key, [SegPrompt(box=box)])
        (result,) = score_maps(self.backend, maps, [("lesion", SegPrompt(box=box))], self.judging)
        return result


class _TextSegmenter:
    """One slice -> the text segmenter's scored mask of ``entity`` (the service's text route and judging)."""

    def __init__(self, service: SegmentationService, entity: str) -> None:
        from app.pipeline.vocab import Role

        self.backend = service.text_segmenter
        if self.backend is None or not getattr(self.backend, "supports_text", False):
            raise PipelineError("no text-prompted segmenter (SAM3) in this profile")
        self.service, self.entity, self.role = service, entity, Role.SEGMENTER
        self.min_presence = float(service.judging(Role.SEGMENTER).min_object_score)
        self.keys: set[str] = set()

    @property
    def embedded(self) -> int:
        return len(self.keys)

    def __call__(self, image: np.ndarray, key: str, box: Box | None, refine: int = 0, margin_px: int = 0):
        self.keys.add(key)
        prompt = SegPrompt(text=self.entity)
        maps = predict_maps(self.backend, image, key, [prompt])
        (result,) = score_maps(self.backend, maps, [(self.entity, prompt)], self.service.judging(self.role))
        return result, None


def _seed_stop(seed, presence: float) -> StopReason | None:
    if seed.area_px == 0:
        return StopReason.EMPTY
    if seed.object_score_kind == "presence" and presence > 0 and (seed.object_score or 0.0) < presence:
        return StopReason.LOW_PRESENCE
    return None


def _values(frame: "DisplayFrame", k: int) -> np.ndarray:
    img = np.asarray(frame.image(k), dtype=np.float64)
    return img.mean(axis=2) if img.ndim == 3 else img


def _next_box(mask: np.ndarray, rules: PropagationRules) -> Box:
    x0, y0, x1, y1 = mask_bbox(mask)  # type: ignore[misc]
    grown = expand_box((x0, y0, x1, y1), mask.shape, rules.margin)
    h, w = mask.shape
    m = rules.margin_px
    return (max(0, min(grown[0], x0 - m)), max(0, min(grown[1], y0 - m)),
            min(w, max(grown[2], x1 + m)), min(h, max(grown[3], y1 + m)))


def _stop(rules: PropagationRules, r, prev: np.ndarray, seed_mean: float, seed_sd: float,
          mean: float, min_presence: float = 0.0) -> StopReason | None:
    """The first rule the new mask ``r`` breaks, or None. ``min_presence``: the text segmenter's
    presence gate (the profile's ``min_object_score``); the IoU rule reads an IoU head only."""
    if r.area_px == 0:
        return StopReason.EMPTY
    iou_head = r.object_score is not None and r.object_score_kind != "presence"
    if rules.min_iou_pred is not None and iou_head and r.object_score < rules.min_iou_pred:
        return StopReason.LOW_IOU
    if r.object_score_kind == "presence" and min_presence > 0 and (r.object_score or 0.0) < min_presence:
        return StopReason.LOW_PRESENCE
    if rules.min_confidence is not None and r.confidence < rules.min_confidence:
        return StopReason.LOW_CONFIDENCE
    ratio = r.area_px / max(int(prev.sum()), 1)
    if rules.min_area_ratio is not None and ratio < rules.min_area_ratio:
        return StopReason.AREA_DROP
    if rules.max_area_ratio is not None and ratio > rules.max_area_ratio:
        return StopReason.AREA_GROWTH
    if rules.min_overlap is not None and (r.mask & prev).sum() / r.area_px < rules.min_overlap:
        return StopReason.DRIFT
    if rules.intensity_z is not None and abs(mean - seed_mean) > rules.intensity_z * max(seed_sd, 1e-6):
        return StopReason.INTENSITY
    return None


def propagate_box(service_or_segmenter: Any, volume: "Volume", frame: "DisplayFrame", slice_index: int, box: Box,
                  *, window: "Window | None" = None, progress: ProgressFn | None = None,
                  cancel: Callable[[], bool] | None = None, rules: PropagationRules = PropagationRules()) -> Lesion3D:
    """The 3-D lesion grown from ``box`` (display frame) on slice ``slice_index``.

    ``service_or_segmenter``: the :class:`SegmentationService` (its box route and judging) or a
    box-prompted backend (default judging). ``window``: the model input's window (default the
    series'), as ``segment --window``."""
    return _grow(_Segmenter(service_or_segmenter), volume, frame, slice_index, box, window=window,
                 progress=progress, cancel=cancel, rules=rules)


def propagate_text(service: SegmentationService, volume: "Volume", frame: "DisplayFrame", slice_index: int,
                   entity: str, *, window: "Window | None" = None, progress: ProgressFn | None = None,
                   cancel: Callable[[], bool] | None = None, rules: PropagationRules = PropagationRules()) -> Lesion3D:
    """The 3-D lesion of a text prompt: the service's text segmenter (SAM3) segments ``entity`` on
    ``slice_index``, then on each neighbour in both directions, with the same stopping rules where
    they apply (the IoU-head rule and the box re-prompting do not: the prompt is the text on every
    slice; SAM3's presence score must reach the profile's ``min_object_score``). ``box`` of each
    :class:`SliceResult` is None: no box was the prompt."""
    return _grow(_TextSegmenter(service, entity), volume, frame, slice_index, None, window=window,
                 progress=progress, cancel=cancel, rules=replace(rules, refine=0, refine_seed=False))


def _grow(seg: Any, volume: "Volume", frame: "DisplayFrame", slice_index: int, box: Box | None, *,
          window: "Window | None", progress: ProgressFn | None, cancel: Callable[[], bool] | None,
          rules: PropagationRules) -> Lesion3D:
    """The propagation loop over one segmenter (``seg(image, key, box, refine, margin_px)`` ->
    (scored mask, the box prompt or None))."""
    t0 = time.perf_counter()
    win = window or volume.window
    presence = float(getattr(seg, "min_presence", 0.0))
    n = volume.num_slices
    if not 0 <= slice_index < n:
        raise PipelineError(f"slice {slice_index} out of range (0..{n - 1})")

    def run(k: int, prompt: Box | None, refine: int):
        return seg(slice_rgb(volume, k, win), image_key(frame.image(k), win),
                   None if prompt is None else tuple(int(v) for v in prompt), refine, rules.margin_px)

    def check_cancel() -> None:
        if cancel is not None and cancel():
            raise Cancelled("propagation cancelled by the user")

    def report(s: SliceResult) -> None:
        if progress is not None:
            progress(s)

    masks: dict[int, np.ndarray] = {}
    seed, seed_box = run(slice_index, box, rules.refine if rules.refine_seed else 0)
    values = _values(frame, slice_index)
    inside = values[seed.mask] if seed.area_px else np.zeros(1)
    seed_mean, seed_sd = float(inside.mean()), float(inside.std())
    median = float(np.median(inside))
    robust_sd = 1.4826 * float(np.median(np.abs(inside - median)))

    def consistent(mask: np.ndarray, k: int) -> np.ndarray:
        if rules.pixel_z is None:
            return mask
        return mask & (np.abs(_values(frame, k) - median) <= rules.pixel_z * max(robust_sd, 1e-6))

    seed_stop = _seed_stop(seed, presence)
    if seed_stop is None:
        masks[slice_index] = consistent(seed.mask, slice_index)
    seed_res = SliceResult(slice_index, float(seed.confidence), seed.object_score, seed.area_px,
                           seed_stop, seed_mean, seed_box, int(masks[slice_index].sum()) if seed_stop is None else 0)
    report(seed_res)
    results = {slice_index: seed_res}
    reasons = [seed_stop or StopReason.EMPTY] * 2
    if seed_stop is None:
        for side, step in ((0, -1), (1, +1)):
            prev, k, reason = seed.mask, slice_index + step, None
            while reason is None:
                if not 0 <= k < n:
                    reason = StopReason.VOLUME_END
                    break
                if abs(k - slice_index) > rules.max_slices:
                    reason = StopReason.MAX_SLICES
                    break
                check_cancel()
                r, prompt = run(k, None if box is None else _next_box(prev, rules), rules.refine)
                mean = float(_values(frame, k)[r.mask].mean()) if r.area_px else 0.0
                reason = _stop(rules, r, prev, seed_mean, seed_sd, mean, presence)
                if reason is None:
                    masks[k] = consistent(r.mask, k)
                res = SliceResult(k, float(r.confidence), r.object_score, r.area_px, reason, mean, prompt,
                                  int(masks[k].sum()) if reason is None else 0)
                results[k] = res
                report(res)
                if reason is None:
                    prev, k = r.mask, k + step  # the next box follows the segmenter's own mask
            reasons[side] = reason
    mask3d = np.zeros(volume.array.shape[:3], bool)
    for k, m in masks.items():
        mask3d[k] = frame.to_array(m)
    size = lesion_size(mask3d, volume)
    first, last = size.slices or (slice_index, slice_index)
    return Lesion3D(mask=mask3d, per_slice=tuple(results[k] for k in sorted(results)), seed=slice_index,
                    first=first, last=last, size=size,
                    stop_reasons=(reasons[0], reasons[1]), rules=rules, backend=seg.backend.info.backend,
                    embedded=seg.embedded, seconds=time.perf_counter() - t0)
