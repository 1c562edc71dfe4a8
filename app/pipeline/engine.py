"""The CARE pipeline engine: the stages of one question about one slice -> one :class:`RunRecord`.

Used identically by the GUI worker (in a thread, with an observer and a cancel flag), the
``ask``/``eval`` CLIs and the tests. No Qt here, and no knowledge of run modes: the caller picks
a strategy (app.pipeline.strategies: CARE-Flow, CARE-Coord) that drives the stages below, and
app.pipeline.lifecycle.execute_run owns the run's status.

Stages (:class:`~app.pipeline.stages.Stages`)::

    1 ENTITIES  entity-proposal VLM on the windowed slice -> parse -> MiniLM de-duplication
    2 MASKS     per entity: text route (profile ``segmenter``) and/or box route
                (``box_segmenter``, LiteMedSAM) -> confidence C = 1 - H/log 2 -> tau
    3 EVIDENCE  zoom-in crop / binary mask / global (app.pipeline.evidence)
    4 ANSWER    EG-VQA: every distinct evidence input in ONE batched ``generate`` call, parsed
                (a fallen-back crop/mask is the global request: asked once, app.pipeline.vqa_inputs)
    5 vote      CARE-Flow majority vote (app.pipeline.flow)

Each stage is a public method taking a :class:`RunContext`, so a coordinator can re-invoke them
(other entities, a subset of evidence types, a second VQA pass) and append to the same record.

Models load lazily on first use and stay on the pipeline object, so the second question
costs only forward passes. Every model call is timed separately from the stage it sits in
(``StageTiming.model_seconds``), which is what the overhead benchmark measures.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from app.study.display import slice_rgb
from app.study.display_frame import DisplayFrame, display_frame
from app.study.edge_labels import native_edge_labels, plane_name
from app.study.volume import Volume, Window

from . import evidence_stage
from . import prompts
from .backends.roles import WARM_UP_ROLES, ModelRoles
from .context import CancelFn, ProgressFn, RunContext, StageClock
from .flow import EVIDENCE_ORDER, answer_token_span, mean_prob, vote
from .parsing import entities_from_reply, normalize_answer, parse_think_answer
from .prompt_safety import literal, template_tokens
from .profiles import Profile
from .record import (
    Answer,
    Entity,
    EntityMerge,
    EvidenceItem,
    InputInfo,
    MaskRecord,
    ModelCall,
    RunRecord,
    StageTiming,
    VoteResult,
    utc_now,
)
from .segmentation.service import SegmentationService, image_key, pixel_sha256
from .types import (
    Box,
    Cancelled,
    EvidenceType,
    Generation,
    PipelineError,
    Stage,
    VLMRequest,
    WeightsMissingError,
)
from .vocab import EntitySource, Mode, Role, coerce
from .vqa_inputs import askers, input_key

if TYPE_CHECKING:
    from .lifecycle import RunObserver
    from .strategies.base import RunStrategy

log = logging.getLogger(__name__)

DEFAULT_TAU = 0.70
MAX_ENTITIES = 5  # the entity model is trained to propose 1-5 entities (CARE reward R_count)
CLINICIAN_ENTITY = "clinician region {n}"

__all__ = ["CarePipeline", "RunContext", "DEFAULT_TAU", "MAX_ENTITIES", "CLINICIAN_ENTITY"]


class CarePipeline:
    """CARE for one profile: implements :class:`~app.pipeline.stages.Stages`.
    Thread-compatible: one run at a time per instance."""

    def __init__(
        self,
        profile: Profile,
        *,
        tau: float | None = None,  # None: each segmenter's profile tau (SegmenterOptions)
        evidence_types: Sequence[EvidenceType] = EVIDENCE_ORDER,
        max_new_tokens: int | None = None,
        entity_max_new_tokens: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        self.profile = profile
        self.device, self.dtype = device, dtype
        self.tau, self.tau_given = float(DEFAULT_TAU if tau is None else tau), tau is not None
        self.evidence_types = tuple(EvidenceType(e) for e in evidence_types)
        self.max_new_tokens = max_new_tokens
        # One budget for both VLM stages unless the entity stage gets its own.
        self.entity_max_new_tokens = entity_max_new_tokens if entity_max_new_tokens is not None else max_new_tokens
        self.models = ModelRoles(profile, device=device, dtype=dtype)

    # ----------------------------------------------------------------------------------
    # Models (app.pipeline.backends.roles)
    # ----------------------------------------------------------------------------------
    def check_weights(self) -> None:
        """Raise WeightsMissingError before any work when a role's weights are absent."""
        self.models.check_weights()

    def backend(self, role: str) -> Any:
        """The loaded backend for ``role`` (loads it on first use); None if the profile has none."""
        return self.models.backend(role)

    def dedup(self) -> Any:
        return self.models.dedup()

    def warm_up(self, roles: Sequence[str] = WARM_UP_ROLES) -> None:
        self.models.warm_up(roles)

    def note_model(self, record: RunRecord, role: str, backend: Any) -> None:
        """Copy a backend's provenance (and its load warning) into the record."""
        self.models.note_model(record, role, backend)

    # ----------------------------------------------------------------------------------
    # Run
    # ----------------------------------------------------------------------------------
    def run(
        self,
        volume: Volume,
        slice_index: int,
        question: str,
        *,
        window: Window | None = None,
        strategy: "RunStrategy | None" = None,
        observer: "RunObserver | None" = None,
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        boxes: Sequence[Box] | None = None,
        discarded: set[str] | None = None,
    ) -> RunRecord:
        """One question through :func:`app.pipeline.lifecycle.execute_run` with ``strategy``
        (default CARE-Flow); ``progress`` is shorthand for an observer that only reports."""
        from .lifecycle import ProgressObserver, execute_run
        from .strategies.flow import FlowStrategy

        if observer is None and progress is not None:
            observer = ProgressObserver(progress)
        return execute_run(self, strategy or FlowStrategy(self), volume, slice_index, question, window=window,
                           observer=observer, cancel=cancel, boxes=boxes, discarded=discarded)

    def prepare(
        self,
        volume: Volume,
        slice_index: int,
        question: str,
        *,
        window: Window | None = None,
        mode: Mode | str = Mode.FLOW,  # written to the record as the strategy names it
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        boxes: Sequence[Box] | None = None,
        discarded: set[str] | None = None,
    ) -> RunContext:
        """The context and a fresh record for one question (input provenance filled in)."""
        from app import __version__

        if volume.provisional:
            raise PipelineError("the image is provisional (one file shown while the series loads); ask once it is loaded")
        if not 0 <= slice_index < volume.num_slices:
            raise PipelineError(f"slice {slice_index} is out of range (the series has {volume.num_slices} slices)")
        question = (question or "").strip()
        if not question:
            raise PipelineError("the question is empty")
        window = window or volume.window
        # The display frame: the models see the slice exactly as the viewer shows it, so every
        # box, mask and crop of the run is in the radiologist's orientation.
        frame = display_frame(volume)
        pixels = np.ascontiguousarray(frame.image(slice_index))
        image = slice_rgb(volume, slice_index, window)
        digest = pixel_sha256(pixels)
        record = RunRecord(
            question=question,
            app_version=__version__,
            mode=coerce(Mode, mode, "mode"),
            profile=self.profile.name,
            tau=self.tau,
            prompt_version=prompts.PROMPT_VERSION,
            input=InputInfo(
                study_uid=volume.study_uid,
                series_uid=volume.series_uid,
                slice_index=int(slice_index),
                num_slices=volume.num_slices,
                modality=volume.modality,
                modality_source=volume.modality_source.value,
                modality_hint=volume.modality_hint,
                window=window.to_dict(),
                pixel_sha256=digest,
                pixel_dtype=str(pixels.dtype),
                image_size=(int(image.shape[1]), int(image.shape[0])),
                source_path=_source_path(volume, slice_index),
                **frame_info(volume, frame),
            ),
        )
        record.slice_rgb = image
        if found := template_tokens(question):
            record.question_literal_tokens = found
            record.warn(f"the question contains chat-template tokens ({', '.join(found)}); every model got them "
                        f"as literal text ({literal(found[0])}), not as structure")
        key = image_key(pixels, window, digest=digest)
        clipped = [_clip_box(b, image.shape[:2]) for b in (boxes or [])]
        record.input.clinician_boxes = list(clipped)  # input: kept even if the run stops before stage 1
        return RunContext(
            volume=volume, slice_index=int(slice_index), window=window, question=question, record=record,
            pixels=pixels, image_rgb=image, image_key=key, progress=progress, cancel=cancel,
            boxes=clipped, discarded={d.strip().lower() for d in (discarded or set())},
            evidence=evidence_stage.evidence_options(self.profile),
        )

    # ----------------------------------------------------------------------------------
    # Stage 1: entity proposal
    # ----------------------------------------------------------------------------------
    def propose_entities(self, ctx: RunContext) -> list[Entity]:
        record = ctx.record
        stage = record.entities
        ctx.report(Stage.ENTITIES, "loading the entity model")
        vlm = self.backend(Role.ENTITY)
        if vlm is None:
            raise PipelineError(f"profile '{self.profile.name}' has no entity model")
        with StageClock(record, Stage.ENTITIES) as clock:
            ctx.report(Stage.ENTITIES, "proposing entities", 0.1)
            request = prompts.entity_request(ctx.question, ctx.image_rgb)
            with clock.model():
                gen = _generate(vlm, [request], self.entity_max_new_tokens)[0]
            self.note_model(record, Role.ENTITY, vlm)
            record.calls.append(_call(Stage.ENTITIES, Role.ENTITY, request, gen, ["slice.png"]))
            h, w = ctx.image_rgb.shape[:2]
            proposed, violations = entities_from_reply(gen.text, (w, h))
            stage.format_violations.extend(violations)
            for v in violations:
                record.warn(f"entity proposal: {v}")
            stage.proposed = proposed

            kept: list[Entity] = []
            for ent in stage.proposed:
                if ent.name.strip().lower() in ctx.discarded:
                    stage.discarded.append(ent.name)
                else:
                    kept.append(ent)

            ctx.report(Stage.ENTITIES, "merging duplicate entities", 0.8)
            if len(kept) > 1:
                dedup = self.dedup()
                with clock.model():
                    final_names, merges = dedup(x.name for x in kept)
                self.note_model(record, Role.ENCODER, dedup)
                stage.merges = merges
                for b in dedup.last_blocked:
                    record.warn(f"entities {b.kept!r} and {b.merged!r} look alike (cosine {b.cosine:.2f}) "
                                "but name opposite sides: kept both")
                boxes = {}
                for ent in kept:  # a merged entity keeps the first box any of its names had
                    boxes.setdefault(_canonical(ent.name, merges), ent.box)
                kept = [Entity(n, boxes.get(n), EntitySource.PROPOSED) for n in final_names]
            if len(kept) > MAX_ENTITIES:
                record.warn(f"entity proposal returned {len(kept)} entities; keeping the first {MAX_ENTITIES}")
                kept = kept[:MAX_ENTITIES]
            clinician = [
                Entity(CLINICIAN_ENTITY.format(n=i + 1), b, EntitySource.CLINICIAN) for i, b in enumerate(ctx.boxes)
            ]
            stage.final = kept + clinician + list(ctx.located)
            if not stage.final:
                record.warn("no entity was proposed; the answer rests on the global image only")
        ctx.report(Stage.ENTITIES, f"{len(stage.final)} entities", 1.0)
        return list(stage.final)

    # ----------------------------------------------------------------------------------
    # Stage 2: segmentation
    # ----------------------------------------------------------------------------------
    def segmentation(self) -> SegmentationService:
        """The profile's segmenters behind the one segmentation service (loads them on first use)."""
        return SegmentationService(self.backend, self.tau if self.tau_given else None, self.profile)

    def segment(self, ctx: RunContext, entities: Sequence[Entity]) -> list[MaskRecord]:
        """Masks for ``entities``: text route when configured, box route when a box is known.

        Appends to ``ctx.record.masks``; callable again (e.g. by a coordinator re-grounding).
        """
        record = ctx.record
        out: list[MaskRecord] = []
        if not entities:
            record.timings.append(StageTiming(Stage.MASKS, 0.0, utc_now()))  # ran, with nothing to do
            return out
        ctx.report(Stage.MASKS, "loading the segmenters")
        service = self.segmentation()
        routes, warnings = service.routes(entities)
        for w in warnings:
            record.warn(w)
        if not routes:
            return out

        with StageClock(record, Stage.MASKS) as clock:
            for r, route in enumerate(routes):
                seg = route.backend
                ctx.check_cancel()
                ctx.report(Stage.MASKS, f"segmenting with {seg.info.backend}", r / len(routes))
                jobs = [(e.name, p) for e, p in zip(route.entities, route.prompts)]
                try:
                    done = service.segment(seg, ctx.image_rgb, ctx.image_key, jobs, route.role)  # embeds once
                except (WeightsMissingError, Cancelled):
                    raise
                except Exception as exc:
                    # One failing route must not lose the question: its entities get no mask, the
                    # evidence falls back to what remains, and the record carries the error.
                    log.exception("segmentation route %s failed", seg.info.backend)
                    names = ", ".join(e.name for e in route.entities)
                    record.errors.append(f"{seg.info.backend} segmentation failed for {names}: {exc}")
                    continue
                clock.model_seconds += done.model_seconds
                self.note_model(record, route.role, seg)
                per_mask = done.model_seconds / max(len(jobs), 1)
                for m in done.masks:
                    m.seconds = per_mask
                    m.png = f"mask_{len(record.masks):02d}.png"
                    record.masks.append(m)
                    out.append(m)
            if out and not any(m.accepted for m in record.masks):
                record.warn("no mask reached its confidence threshold (" + ", ".join(sorted({f"{m.backend} tau={m.tau:.2f} on C_{m.confidence_gate.value}" for m in out})) + ")")
        ctx.report(Stage.MASKS, f"{sum(m.accepted for m in out)} of {len(out)} masks accepted", 1.0)
        return out

    # ----------------------------------------------------------------------------------
    # Stage 3: evidence
    # ----------------------------------------------------------------------------------
    def build_evidence(self, ctx: RunContext, kinds: Sequence[EvidenceType], *,
                       masks: Sequence[MaskRecord] | None = None, margin: float | None = None) -> list[EvidenceItem]:
        """Evidence items from the accepted masks (``masks``: a subset, e.g. one entity a
        coordinator re-grounds on; ``margin``: a looser or tighter crop than the default)."""
        return evidence_stage.build_items(ctx, kinds, self.backend(Role.VQA), masks=masks, margin=margin)

    # ----------------------------------------------------------------------------------
    # Stage 4: evidence-grounded VQA
    # ----------------------------------------------------------------------------------
    def answer(self, ctx: RunContext, items: Sequence[EvidenceItem]) -> list[Answer]:
        """One batched VQA call over the distinct inputs of ``items``; every pass gets its row.

        A pass whose prompt and images equal another's in this run (crop and mask fallen back to
        the global image) is not asked again: its row shares that call (``call_index``) and names
        the row that asked it (``same_input_as``), so the vote counts the input once."""
        record = ctx.record
        if not items:
            return []
        ctx.report(Stage.ANSWER, "loading the VQA model")
        vlm = self.backend(Role.VQA)
        if vlm is None:
            raise PipelineError(f"profile '{self.profile.name}' has no VQA model")
        answers: list[Answer] = []
        with StageClock(record, Stage.ANSWER) as clock:
            requests = [prompts.vqa_request(ctx.question, it) for it in items]
            keys = [input_key(r) for r in requests]
            first = len(record.answers)
            asker = askers(items, keys, ctx.asked)
            ask = sorted(asker.values())
            ctx.report(Stage.ANSWER, f"answering {len(ask)} distinct inputs for {len(items)} evidence passes", 0.05)
            gens: list[Generation] = []
            if ask:
                with clock.model():
                    gens = _generate(vlm, [requests[i] for i in ask], self.max_new_tokens)
                self.note_model(record, Role.VQA, vlm)
            if len(gens) != len(ask):
                raise PipelineError(f"the VQA model returned {len(gens)} answers for {len(ask)} requests")
            parsed: dict[int, Answer] = {}  # asking item -> its parsed row (call_index set)
            for i, gen in zip(ask, gens):
                it, req = items[i], requests[i]
                record.calls.append(_call(Stage.ANSWER, Role.VQA, req, gen, it.image_files, it.type))
                p = parse_think_answer(gen.text)
                span = answer_token_span(gen.tokens, gen.text, *p.answer_span) if p.answer_span else None
                parsed[i] = Answer(
                    evidence=it.type, call_index=len(record.calls) - 1, think=p.think, answer=p.answer,
                    normalized=normalize_answer(p.answer, question=ctx.question) if p.answer else "",
                    format_violations=list(p.violations), answer_token_span=span,
                    mean_answer_prob=mean_prob(gen.token_logprobs, span),
                )
                for v in p.violations:
                    record.warn(f"{it.type.value} answer: {v}")
                ctx.asked[keys[i]] = first + i
            for i, it in enumerate(items):
                src = asker.get(keys[i])
                if src == i:
                    a = parsed[i]
                else:  # another row's input (later in this batch, or asked in an earlier round)
                    row = first + src if src is not None else ctx.asked[keys[i]]
                    base = parsed[src] if src is not None else record.answers[row]
                    a = dataclasses.replace(base, evidence=it.type, format_violations=list(base.format_violations),
                                            same_input_as=row)
                a.fell_back = bool(it.fallback)
                record.answers.append(a)
                answers.append(a)
        ctx.report(Stage.ANSWER, "answers parsed", 1.0)
        return answers

    # ----------------------------------------------------------------------------------
    # Stage 5: CARE-Flow vote
    # ----------------------------------------------------------------------------------
    def aggregate(self, ctx: RunContext, answers: Sequence[Answer] | None = None) -> VoteResult:
        record = ctx.record
        with StageClock(record, Stage.REVIEW):
            result = vote(record.answers if answers is None else answers, question=ctx.question)
            record.vote = result
            record.final_answer = result.winner_raw
            if not result.winner:
                record.warn("no evidence pass produced a usable answer")
        shown = " ".join(record.final_answer.split())[:60]
        ctx.report(Stage.REVIEW, f"answer: {shown or '(none)'}", 1.0)
        return result



# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------
def frame_info(volume: Volume, frame: DisplayFrame) -> dict[str, Any]:
    """The InputInfo fields naming the display frame a run is in (never invented: no labels
    when the file does not say, no spacing when it is uncalibrated)."""
    labels = native_edge_labels(volume)
    return {
        "plane": plane_name(volume, frame.plane).lower(),
        "temporal": bool(volume.temporal),
        "edge_labels": {} if labels is None else {"left": labels.left, "right": labels.right,
                                                   "top": labels.top, "bottom": labels.bottom},
        "pixel_spacing": None if volume.spacing_source == "none" else tuple(float(s) for s in frame.pixel_spacing),
    }


def _source_path(volume: Volume, k: int) -> str:
    files = volume.source_files
    if not files:
        return ""
    return files[k] if len(files) == volume.num_slices else files[0]


def _clip_box(box: Sequence[int], shape: tuple[int, ...]) -> Box:
    h, w = shape[0], shape[1]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0 = max(0, min(w - 1, x0)), max(0, min(h - 1, y0))
    x1, y1 = max(x0 + 1, min(w, x1)), max(y0 + 1, min(h, y1))
    return (x0, y0, x1, y1)


def _canonical(name: str, merges: Sequence[EntityMerge]) -> str:
    for m in merges:
        if name == m.kept or name in m.merged:
            return m.kept
    return name


def _call(stage: Stage, role: Role, req: VLMRequest, gen: Generation, files: list[str],
          evidence: EvidenceType | None = None) -> ModelCall:
    return ModelCall(
        stage=stage, role=role, prompt=req.lead + req.prompt, system=req.system, prompt_text=gen.prompt_text,
        image_files=list(files), evidence=evidence, raw_output=gen.text, tokens=list(gen.tokens),
        token_logprobs=[float(x) for x in gen.token_logprobs], seconds=float(gen.seconds),
        shared_prefix_tokens=gen.shared_prefix_tokens, tokens_note=gen.tokens_note,
    )


def _generate(vlm: Any, requests: list[VLMRequest], max_new_tokens: int | None) -> list[Generation]:
    if max_new_tokens is None:
        return list(vlm.generate(requests))
    return list(vlm.generate(requests, max_new_tokens=max_new_tokens))
