"""Where the question's entity is across the volume: the first step of a study-scope run.

Three routes, the first that applies (the record names which, and which slices it looked at):

1. a clinician box: propagated in 3-D from its slice (app.pipeline.segmentation.propagate);
2. a text segmenter in the profile (SAM3): the entity model names the entities on the slice on
   screen, and the text route segments those names on every slice (evenly spaced, at most
   ``MAX_TEXT_SLICES``, when the series is longer);
3. otherwise the entity model's boxes on ``SAMPLED_SLICES`` evenly spaced slices (plus the slice
   on screen), each box segmented by the box route and judged against tau.

Every slice given to a segmenter is embedded once, under the engine's image key, so the
evidence runs that follow reuse the embedding. Progress is reported per slice and cancel is
checked between slices.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from app.pipeline.record import Entity, MaskRecord
from app.pipeline.segmentation.confidence import mask_bbox
from app.pipeline.study_record import LocalisedSlice, StudyMask3D
from app.pipeline.types import PipelineError, SegPrompt
from app.pipeline.vocab import EntitySource, LocaliseRoute, Role, RunStatus
from app.study.display import slice_rgb
from app.study.display_frame import display_frame

if TYPE_CHECKING:
    from app.pipeline.context import RunContext

MAX_TEXT_SLICES = 24  # text route: slices looked at in a longer series (evenly spaced)
SAMPLED_SLICES = 5  # entity-box route: evenly spaced slices (the first and last slice excluded)
PROPAGATED = "{name} (propagated)"
LOCALISED = "{name} (localised on slice {number})"

Report = Callable[[str, float], None]  # message, fraction of the localisation done


@dataclass
class Localisation:
    route: LocaliseRoute
    note: str
    slices: list[LocalisedSlice]  # every slice looked at, in slice order
    located: dict[int, list[Entity]] = field(default_factory=dict)  # entities the evidence run on a slice adds
    confident_pool: set[int] | None = None  # slices an evidence slice may come from (None: any)
    mask3d: StudyMask3D | None = None
    embedded: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)  # sampled route: partial records
    backend: Any = None  # the segmenter that localised (its provenance goes into the record)
    role: Role | None = None

    @property
    def sampled(self) -> list[int]:
        return [s.index for s in self.slices]

    def best(self, index: int) -> LocalisedSlice | None:
        return next((s for s in self.slices if s.index == index), None)


def evenly_spaced(n: int, count: int, *, ends: bool) -> list[int]:
    """``count`` slice indices spread over ``0..n-1`` (with or without the two end slices)."""
    if n <= count:
        return list(range(n))
    if ends:
        return sorted({int(round(v)) for v in np.linspace(0, n - 1, count)})
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, count + 2)[1:-1]})


def localise(host: Any, ctx: "RunContext", report: Report) -> Localisation:
    """The entity across ``ctx.volume``, by the first route that applies (module docstring)."""
    t0 = time.perf_counter()
    service = host.segmentation()
    if ctx.boxes:
        loc = _propagate(service, ctx, report)
    else:
        text = service.text_segmenter
        loc = None
        if text is not None and getattr(text, "supports_text", False):
            loc = _text_route(host, service, text, ctx, report)
        if loc is None:
            loc = _sampled_route(host, service, ctx, report)
    loc.seconds = time.perf_counter() - t0
    return loc


# ------------------------------------------------------------------------- 1: clinician box
def _propagate(service: Any, ctx: "RunContext", report: Report) -> Localisation:
    from app.pipeline.segmentation.propagate import propagate_box

    n = ctx.volume.num_slices
    box = ctx.boxes[0]
    name = "clinician region 1"
    route = service.box_route()
    if route is None:
        raise PipelineError("a study-scope question with a box needs a box-prompted segmenter in the profile")
    judging = service.judging(route[0])
    done = [0]

    def progress(s: Any) -> None:
        done[0] += 1
        report(f"propagating the box: slice {s.index + 1}/{n}", min(done[0] / max(n, 1), 1.0))

    lesion = propagate_box(service, ctx.volume, display_frame(ctx.volume), ctx.slice_index, box,
                           window=ctx.window, progress=progress, cancel=ctx.cancel)
    slices, located, pool = [], {}, set()
    for s in lesion.per_slice:
        included = s.stop_reason is None and s.area_px > 0
        confident = included and s.confidence >= judging.tau
        slices.append(LocalisedSlice(
            index=s.index, number=s.index + 1, area_px=int(s.area_px) if included else 0,
            confidence=float(s.confidence), confident=confident, entity=name,
            box=tuple(int(v) for v in s.box) if s.box is not None else None,
            note="" if s.stop_reason is None else f"propagation stopped here: {s.stop_reason.value}"))
        if included:
            pool.add(s.index)
            if s.index != ctx.slice_index and s.box is not None:
                located[s.index] = [Entity(PROPAGATED.format(name=name), tuple(int(v) for v in s.box),
                                           EntitySource.LOCALISED)]
    size = lesion.size
    mask3d = StudyMask3D(
        backend=lesion.backend, seed_slice=lesion.seed, first=lesion.first, last=lesion.last, voxels=size.voxels,
        volume_ml=size.volume_ml, extent_slices=size.extent_slices, extent_mm=size.extent_mm,
        largest_diameter_mm=size.largest_diameter_mm, largest_diameter_px=float(size.largest_diameter_px),
        diameter_slice=size.diameter_slice, stop_reasons=[r.value for r in lesion.stop_reasons],
        rules=lesion.rules.name, per_slice=[p.to_dict() for p in lesion.per_slice])
    if len(ctx.boxes) > 1:
        note_more = f"; only the first of the {len(ctx.boxes)} boxes was propagated"
    else:
        note_more = ""
    note = (f"your box on slice {ctx.slice_index + 1} propagated slice by slice with {lesion.backend} "
            f"({lesion.rules.name} rules): lesion on slices {lesion.first + 1}\u2013{lesion.last + 1}, "
            f"{lesion.embedded} slices embedded{note_more}")
    return Localisation(LocaliseRoute.CLINICIAN_BOX_3D, note, slices, located, pool, mask3d,
                        embedded=int(lesion.embedded), model_seconds=float(lesion.seconds),
                        backend=route[1], role=route[0])


# ------------------------------------------------------------------------- 2: text route
def _text_route(host: Any, service: Any, text: Any, ctx: "RunContext", report: Report) -> Localisation | None:
    """None when the entity model names nothing on the slice on screen (the sampled route runs)."""
    names_ctx = _slice_context(host, ctx, ctx.slice_index)
    entities = host.propose_entities(names_ctx)
    names = [e.name for e in entities if e.source == EntitySource.PROPOSED]
    if not names:
        return None
    n = ctx.volume.num_slices
    order = evenly_spaced(n, MAX_TEXT_SLICES, ends=True)
    frame = display_frame(ctx.volume)
    slices: list[LocalisedSlice] = []
    located: dict[int, list[Entity]] = {}
    model_seconds = 0.0
    for i, k in enumerate(order):
        ctx.check_cancel()
        report(f"text route on slice {k + 1}/{n}", i / len(order))
        image, key = _slice_input(ctx, frame, k)
        done = service.segment(text, image, key, [(nm, SegPrompt(text=nm)) for nm in names], Role.SEGMENTER)
        model_seconds += done.model_seconds
        slices.append(_score(k, done.masks))
        best = _best(done.masks)
        if best is not None and best.accepted and best.bbox is not None:
            located[k] = [Entity(LOCALISED.format(name=best.entity, number=k + 1), tuple(best.bbox),
                                 EntitySource.LOCALISED)]
    report(f"text route: {len(order)} slices", 1.0)
    stride = "every slice" if len(order) == n else f"{len(order)} evenly spaced slices of {n}"
    note = (f"the entity model named {', '.join(names)} on slice {ctx.slice_index + 1}; "
            f"{text.info.backend} segmented those names on {stride}")
    loc = Localisation(LocaliseRoute.TEXT_PER_SLICE, note, slices, located, embedded=len(order),
                       model_seconds=model_seconds, backend=text, role=Role.SEGMENTER)
    loc.records.append(_partial(names_ctx))
    return loc


# ------------------------------------------------------------------------- 3: sampled boxes
def _sampled_route(host: Any, service: Any, ctx: "RunContext", report: Report) -> Localisation:
    n = ctx.volume.num_slices
    order = sorted(set(evenly_spaced(n, SAMPLED_SLICES, ends=False)) | {ctx.slice_index})
    slices: list[LocalisedSlice] = []
    located: dict[int, list[Entity]] = {}
    records: list[dict[str, Any]] = []
    embedded, model_seconds = 0, 0.0
    for i, k in enumerate(order):
        ctx.check_cancel()
        report(f"entity model on sampled slice {k + 1}/{n}", i / len(order))
        sctx = _slice_context(host, ctx, k)
        entities = host.propose_entities(sctx)
        boxed = [e for e in entities if e.box is not None]
        masks = host.segment(sctx, boxed) if boxed else []
        embedded += 1 if boxed else 0
        model_seconds += sum(t.model_seconds for t in sctx.record.timings)
        slices.append(_score(k, masks))
        records.append(_partial(sctx))
    report(f"sampled {len(order)} slices", 1.0)
    shown = ", ".join(str(k + 1) for k in order)
    note = (f"no box and no text segmenter: the entity model's boxes on {len(order)} sampled slices "
            f"({shown}), each segmented by the box route and judged against tau")
    route = service.box_route()
    return Localisation(LocaliseRoute.SAMPLED_ENTITY_BOXES, note, slices, located, embedded=embedded,
                        model_seconds=model_seconds, records=records,
                        backend=route[1] if route else None, role=route[0] if route else None)


# ------------------------------------------------------------------------- helpers
def _slice_context(host: Any, ctx: "RunContext", k: int) -> "RunContext":
    """A fresh context (and record) for slice ``k``: the localisation's work never lands in the
    study record's own sections (those are the primary evidence slice's)."""
    return host.prepare(ctx.volume, k, ctx.question, window=ctx.window, mode=ctx.record.mode,
                        cancel=ctx.cancel, discarded=ctx.discarded)


def _slice_input(ctx: "RunContext", frame: Any, k: int) -> tuple[np.ndarray, str]:
    from app.pipeline.segmentation.service import image_key

    return slice_rgb(ctx.volume, k, ctx.window), image_key(np.ascontiguousarray(frame.image(k)), ctx.window)


def _best(masks: list[MaskRecord]) -> MaskRecord | None:
    """The largest accepted mask, else the most confident one."""
    accepted = [m for m in masks if m.accepted and m.area_px > 0]
    if accepted:
        return max(accepted, key=lambda m: (m.area_px, m.confidence))
    return max(masks, key=lambda m: m.confidence) if masks else None


def _score(k: int, masks: list[MaskRecord]) -> LocalisedSlice:
    best = _best(masks)
    if best is None:
        return LocalisedSlice(k, k + 1, note="no entity with a box" if not masks else "")
    confident = bool(best.accepted and best.area_px > 0)
    box = tuple(best.bbox) if best.bbox is not None else (mask_bbox(best.mask) if best.mask is not None else None)
    return LocalisedSlice(k, k + 1, area_px=int(best.area_px) if confident else 0, confidence=float(best.confidence),
                          confident=confident, entity=best.entity, box=box,
                          note="" if confident else f"no mask reached tau (best C {best.confidence:.2f})")


def _partial(sctx: "RunContext") -> dict[str, Any]:
    """A localisation slice's record (entity and mask stages only) as JSON."""
    from app.pipeline.record import utc_now

    rec = sctx.record
    rec.status, rec.finished = RunStatus.COMPLETED, utc_now()
    rec.warn("localisation only: the entity and mask stages ran on this slice, no question was answered here")
    return rec.to_dict()
