"""The CARE pipeline engine: one question about one slice -> one :class:`RunRecord`.

Used identically by the GUI worker (in a thread, with progress/cancel callbacks), the
``ask``/``eval`` CLIs and the tests. No Qt here.

Stages (CARE-Flow)::

    1 ENTITIES  entity-proposal VLM on the windowed slice -> parse -> MiniLM de-duplication
    2 MASKS     per entity: text route (profile ``segmenter``) and/or box route
                (``box_segmenter``, LiteMedSAM) -> confidence C = 1 - H/log 2 -> tau
    3 EVIDENCE  zoom-in crop / binary mask / global (app.pipeline.evidence)
    4 ANSWER    EG-VQA: every evidence pass in ONE batched ``generate`` call, parsed
    5 vote      CARE-Flow majority vote (app.pipeline.flow)

Each stage is a public method taking a :class:`RunContext`, so a CARE-Coord coordinator can
re-invoke them (other entities, a subset of evidence types, a second VQA pass) and append
to the same record; ``run(mode="coord")`` hands the context to ``self.coordinator``.

Models load lazily on first use and stay on the pipeline object, so the second question
costs only forward passes. Every model call is timed separately from the stage it sits in
(``StageTiming.model_seconds``), which is what the overhead benchmark measures.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from app.study.display import slice_rgb
from app.study.volume import Volume, Window

from . import evidence as ev
from .flow import EVIDENCE_ORDER, answer_token_span, mean_prob, vote
from .profiles import ModelSpec, Profile
from .record import (
    STATUS_CANCELLED,
    STATUS_COMPLETED,
    STATUS_FAILED,
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
from .types import (
    Box,
    Cancelled,
    EvidenceType,
    Generation,
    ModelInfo,
    PipelineError,
    SegPrompt,
    Stage,
    VLMRequest,
    WeightsMissingError,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[Stage, str, float], None]
CancelFn = Callable[[], bool]

DEFAULT_TAU = 0.70
MAX_ENTITIES = 5  # the entity model is trained to propose 1-5 entities (CARE reward R_count)
CLINICIAN_ENTITY = "clinician region {n}"

# Rough share of the run each stage takes, for a monotone progress fraction.
_STAGE_SPAN = {
    Stage.ENTITIES: (0.00, 0.30),
    Stage.MASKS: (0.30, 0.45),
    Stage.EVIDENCE: (0.45, 0.50),
    Stage.ANSWER: (0.50, 0.98),
    Stage.REVIEW: (0.98, 1.00),
}


class Coordinator(Protocol):
    """CARE-Coord extension point (app.pipeline.coordinator.CareCoordinator): plans which evidence to build,
    calls the stage methods of the pipeline, reviews answers, may re-ground, and appends
    :class:`~app.pipeline.record.CoordinatorEvent` items to ``ctx.record.coordinator``."""

    info: ModelInfo

    def run(self, pipeline: "CarePipeline", ctx: "RunContext") -> None: ...


@dataclass
class RunContext:
    """Everything the stages share for one question; the record is filled in place."""

    volume: Volume
    slice_index: int
    window: Window
    question: str
    record: RunRecord
    pixels: np.ndarray  # the slice's modality values [y, x] (or RGB [y, x, 3])
    image_rgb: np.ndarray  # windowed model input (H, W, 3) uint8
    image_key: str  # identifies (pixels, window) for the segmenters' embedding caches
    progress: ProgressFn | None = None
    cancel: CancelFn | None = None
    boxes: list[Box] = field(default_factory=list)
    discarded: set[str] = field(default_factory=set)

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled by the user")

    def report(self, stage: Stage, message: str, within: float = 0.0) -> None:
        if self.progress is None:
            return
        lo, hi = _STAGE_SPAN.get(stage, (0.0, 1.0))
        try:
            self.progress(stage, message, lo + (hi - lo) * min(max(within, 0.0), 1.0))
        except Exception:  # a broken progress sink must not lose the run
            log.exception("progress callback failed")


class _StageClock:
    """Times one stage and the model calls inside it."""

    def __init__(self, record: RunRecord, stage: Stage) -> None:
        self.record, self.stage = record, stage
        self.model_seconds = 0.0

    def __enter__(self) -> "_StageClock":
        self.started = utc_now()
        self.t0 = time.perf_counter()
        return self

    def model(self) -> "_ModelClock":
        return _ModelClock(self)

    def __exit__(self, *exc: Any) -> None:
        self.record.timings.append(
            StageTiming(self.stage, time.perf_counter() - self.t0, self.started, self.model_seconds)
        )


class _ModelClock:
    def __init__(self, stage: _StageClock) -> None:
        self.stage = stage
        self.seconds = 0.0

    def __enter__(self) -> "_ModelClock":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.stage.model_seconds += self.seconds


class CarePipeline:
    """CARE for one profile. Thread-compatible: one ``run`` at a time per instance."""

    def __init__(
        self,
        profile: Profile,
        *,
        tau: float = DEFAULT_TAU,
        evidence_types: Sequence[EvidenceType] = EVIDENCE_ORDER,
        max_new_tokens: int | None = None,
        entity_max_new_tokens: int | None = None,
        coordinator: Coordinator | None = None,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        self.profile = profile
        self.device, self.dtype = device, dtype
        self.tau = float(tau)
        self.evidence_types = tuple(EvidenceType(e) for e in evidence_types)
        self.max_new_tokens = max_new_tokens
        # One budget for both VLM stages unless the entity stage gets its own.
        self.entity_max_new_tokens = entity_max_new_tokens if entity_max_new_tokens is not None else max_new_tokens
        self.coordinator = coordinator
        # Loaded backends, shared between roles that name the same checkpoint.
        self._loaded: dict[tuple[str, str, str], Any] = {}
        self._roles: dict[str, Any] = {}
        self._dedup: Any = None

    # ----------------------------------------------------------------------------------
    # Models
    # ----------------------------------------------------------------------------------
    def check_weights(self) -> None:
        """Raise WeightsMissingError before any work when a role's weights are absent."""
        missing = []
        for spec in self.profile.models.values():
            if spec.role == "coordinator" or not _needs_local_folder(spec):
                continue
            if spec.backend == "internvl":
                try:  # the backend's own check (config + weight files); creating it loads nothing
                    self._vlm(spec).check_weights()
                except WeightsMissingError:
                    missing.append(f"{spec.role} ({spec.path()})")
            elif spec.backend == "sam3":
                from .segmentation.sam3 import weights_present

                if not weights_present(spec.path()):
                    missing.append(f"{spec.role} ({spec.path()})")
            elif not _has_weights(spec):
                missing.append(f"{spec.role} ({spec.path()})")
        if missing:
            raise WeightsMissingError(
                f"weights for profile '{self.profile.name}' are not installed: missing {'; '.join(missing)}. "
                f"Run `care-viewer models fetch {self.profile.name}` or `care-viewer models import DIR`."
            )

    def backend(self, role: str) -> Any:
        """The loaded backend for ``role`` (loads it on first use); None if the profile has none."""
        if role in self._roles:
            return self._roles[role]
        spec = self.profile.get(role)
        if spec is None:
            self._roles[role] = None
            return None
        key = (spec.backend, _backend_location(spec), spec.revision)
        if key not in self._loaded:
            if spec.backend == "internvl":
                self._loaded[key] = self._vlm(spec)
            elif spec.backend == "remote":
                self._loaded[key] = _remote_vlm(spec)
            else:
                self._loaded[key] = _build_segmenter(spec)
        self._roles[role] = self._loaded[key]
        return self._roles[role]

    def _vlm(self, spec: ModelSpec) -> Any:
        from .backends.internvl import get_vlm

        return get_vlm(spec, device=self.device, dtype=self.dtype, profile=self.profile.name)

    def dedup(self) -> Any:
        if self._dedup is None:
            self._dedup = _EntityDedup()
        return self._dedup

    def warm_up(self, roles: Sequence[str] = ("entity", "segmenter", "box_segmenter", "vqa")) -> None:
        for role in roles:
            self.backend(role)

    def _note_model(self, record: RunRecord, role: str, backend: Any) -> None:
        """Copy a backend's provenance into the record (after it loaded: revision + hash known)."""
        info = getattr(backend, "info", None)
        if info is None:
            return
        record.models[role] = replace(info, role=role)
        warning = getattr(backend, "warning", None)
        if isinstance(warning, str) and warning:
            record.warn(f"{role} model: {warning}")

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
        mode: str = "flow",
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        boxes: Sequence[Box] | None = None,
        discarded: set[str] | None = None,
    ) -> RunRecord:
        """Answer ``question`` about slice ``slice_index``; never loses a started record.

        Cancellation ends with status "cancelled" and whatever the finished stages produced;
        a :class:`PipelineError` ends with status "failed" and its message in ``errors``;
        :class:`WeightsMissingError` propagates (the caller tells the user how to install).
        """
        ctx = self.prepare(volume, slice_index, question, window=window, mode=mode,
                           progress=progress, cancel=cancel, boxes=boxes, discarded=discarded)
        record = ctx.record
        try:
            self.check_weights()
            if mode == "flow":
                self.run_flow(ctx)
            elif mode == "coord":
                if self.coordinator is None:
                    self.coordinator = _build_coordinator(self)
                self._note_model(record, "coordinator", self.coordinator)
                self.coordinator.run(self, ctx)
            else:
                raise PipelineError(f"unknown mode {mode!r} (expected 'flow' or 'coord')")
            record.status = STATUS_COMPLETED
        except WeightsMissingError:
            record.status = STATUS_FAILED
            record.finished = utc_now()
            raise
        except Cancelled as exc:
            record.status = STATUS_CANCELLED
            record.warn(str(exc))
        except PipelineError as exc:
            record.status = STATUS_FAILED
            record.errors.append(str(exc))
        except Exception as exc:  # a bug must not take the GUI down; the record keeps the work done
            log.exception("pipeline run %s failed", record.run_id)
            record.status = STATUS_FAILED
            record.errors.append(f"internal error: {type(exc).__name__}: {exc}")
        record.finished = utc_now()
        return record

    def prepare(
        self,
        volume: Volume,
        slice_index: int,
        question: str,
        *,
        window: Window | None = None,
        mode: str = "flow",
        progress: ProgressFn | None = None,
        cancel: CancelFn | None = None,
        boxes: Sequence[Box] | None = None,
        discarded: set[str] | None = None,
    ) -> RunContext:
        """The context and a fresh record for one question (input provenance filled in)."""
        from app import __version__

        if not 0 <= slice_index < volume.num_slices:
            raise PipelineError(f"slice {slice_index} is out of range (the series has {volume.num_slices} slices)")
        question = (question or "").strip()
        if not question:
            raise PipelineError("the question is empty")
        window = window or volume.window
        pixels = np.ascontiguousarray(volume.slice(slice_index))
        image = slice_rgb(volume, slice_index, window)
        digest = hashlib.sha256(pixels.tobytes()).hexdigest()
        record = RunRecord(
            question=question,
            app_version=__version__,
            mode=mode,
            profile=self.profile.name,
            tau=self.tau,
            prompt_version=_prompt_version(),
            input=InputInfo(
                study_uid=volume.study_uid,
                series_uid=volume.series_uid,
                slice_index=int(slice_index),
                num_slices=volume.num_slices,
                modality=volume.modality,
                window=window.to_dict(),
                pixel_sha256=digest,
                pixel_dtype=str(pixels.dtype),
                image_size=(int(image.shape[1]), int(image.shape[0])),
                source_path=_source_path(volume, slice_index),
            ),
        )
        record.slice_rgb = image
        key = f"{digest}:{window.center:g}:{window.width:g}"
        return RunContext(
            volume=volume, slice_index=int(slice_index), window=window, question=question, record=record,
            pixels=pixels, image_rgb=image, image_key=key, progress=progress, cancel=cancel,
            boxes=[_clip_box(b, image.shape[:2]) for b in (boxes or [])],
            discarded={d.strip().lower() for d in (discarded or set())},
        )

    def run_flow(self, ctx: RunContext) -> None:
        """CARE-Flow: every stage once, all evidence types, majority vote."""
        ctx.check_cancel()
        entities = self.propose_entities(ctx)
        ctx.check_cancel()
        self.segment(ctx, entities)
        ctx.check_cancel()
        items = self.build_evidence(ctx, self.evidence_types)
        ctx.check_cancel()
        self.answer(ctx, items)
        ctx.check_cancel()
        self.aggregate(ctx)

    # ----------------------------------------------------------------------------------
    # Stage 1: entity proposal
    # ----------------------------------------------------------------------------------
    def propose_entities(self, ctx: RunContext) -> list[Entity]:
        record = ctx.record
        stage = record.entities
        ctx.report(Stage.ENTITIES, "loading the entity model")
        vlm = self.backend("entity")
        if vlm is None:
            raise PipelineError(f"profile '{self.profile.name}' has no entity model")
        with _StageClock(record, Stage.ENTITIES) as clock:
            ctx.report(Stage.ENTITIES, "proposing entities", 0.1)
            request = _prompts().entity_request(ctx.question, ctx.image_rgb)
            with clock.model():
                gen = _generate(vlm, [request], self.entity_max_new_tokens)[0]
            self._note_model(record, "entity", vlm)
            record.calls.append(_call(Stage.ENTITIES, "entity", request, gen, ["slice.png"]))
            h, w = ctx.image_rgb.shape[:2]
            proposed, violations = _parse_entities(gen.text, (w, h))
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
                self._note_model(record, "encoder", dedup)
                stage.merges = merges
                for b in dedup.last_blocked:
                    record.warn(f"entities {b.kept!r} and {b.merged!r} look alike (cosine {b.cosine:.2f}) "
                                "but name opposite sides: kept both")
                boxes = {}
                for ent in kept:  # a merged entity keeps the first box any of its names had
                    boxes.setdefault(_canonical(ent.name, merges), ent.box)
                kept = [Entity(n, boxes.get(n), "proposed") for n in final_names]
            if len(kept) > MAX_ENTITIES:
                record.warn(f"entity proposal returned {len(kept)} entities; keeping the first {MAX_ENTITIES}")
                kept = kept[:MAX_ENTITIES]
            clinician = [
                Entity(CLINICIAN_ENTITY.format(n=i + 1), b, "clinician") for i, b in enumerate(ctx.boxes)
            ]
            stage.final = kept + clinician
            if not stage.final:
                record.warn("no entity was proposed; the answer rests on the global image only")
        ctx.report(Stage.ENTITIES, f"{len(stage.final)} entities", 1.0)
        return list(stage.final)

    # ----------------------------------------------------------------------------------
    # Stage 2: segmentation
    # ----------------------------------------------------------------------------------
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
        text_seg = self.backend("segmenter")
        box_seg = self.backend("box_segmenter")
        routes: list[tuple[str, Any, list[tuple[Entity, SegPrompt]]]] = []
        if text_seg is not None and getattr(text_seg, "supports_text", False):
            jobs = [(e, SegPrompt(text=e.name)) for e in entities if e.source != "clinician"]
            if jobs:
                routes.append(("segmenter", text_seg, jobs))
        boxed = [(e, SegPrompt(box=e.box)) for e in entities if e.box is not None]
        if boxed:
            if box_seg is not None and getattr(box_seg, "supports_box", False):
                routes.append(("box_segmenter", box_seg, boxed))
            elif text_seg is not None and getattr(text_seg, "supports_box", False):
                routes.append(("segmenter", text_seg, boxed))
            else:
                record.warn("boxes were given but the profile has no box-prompted segmenter")
        if not routes:
            record.warn("no segmenter can handle these entities (no text route and no boxes)")
            return out

        with _StageClock(record, Stage.MASKS) as clock:
            for r, (role, seg, jobs) in enumerate(routes):
                ctx.check_cancel()
                ctx.report(Stage.MASKS, f"segmenting with {seg.info.backend}", r / len(routes))
                try:
                    with clock.model() as mc:
                        seg.set_image(ctx.image_rgb, ctx.image_key)  # embeds once per slice
                        probs = seg.predict([p for _, p in jobs])
                    if len(probs) != len(jobs):
                        raise PipelineError(f"returned {len(probs)} masks for {len(jobs)} prompts")
                    bad = [p.shape for p in probs if p.shape != ctx.image_rgb.shape[:2]]
                    if bad:
                        raise PipelineError(f"returned a {bad[0]} map for a {ctx.image_rgb.shape[:2]} image")
                except (WeightsMissingError, Cancelled):
                    raise
                except Exception as exc:
                    # One failing route must not lose the question: its entities get no mask, the
                    # evidence falls back to what remains, and the record carries the error.
                    log.exception("segmentation route %s failed", seg.info.backend)
                    names = ", ".join(e.name for e, _ in jobs)
                    record.errors.append(f"{seg.info.backend} segmentation failed for {names}: {exc}")
                    continue
                self._note_model(record, role, seg)
                per_mask = mc.seconds / max(len(jobs), 1)
                for (ent, prompt), prob in zip(jobs, probs):
                    m = score_mask_record(prob, ent.name, seg.info.backend, "box" if prompt.text is None else "text",
                               prompt.box, self.tau)
                    m.seconds = per_mask
                    m.png = f"mask_{len(record.masks):02d}.png"
                    record.masks.append(m)
                    out.append(m)
            if out and not any(m.accepted for m in record.masks):
                record.warn(f"no mask reached the confidence threshold tau={self.tau:.2f}")
        ctx.report(Stage.MASKS, f"{sum(m.accepted for m in out)} of {len(out)} masks accepted", 1.0)
        return out

    # ----------------------------------------------------------------------------------
    # Stage 3: evidence
    # ----------------------------------------------------------------------------------
    def build_evidence(self, ctx: RunContext, kinds: Sequence[EvidenceType], *,
                       masks: Sequence[MaskRecord] | None = None, margin: float | None = None) -> list[EvidenceItem]:
        """Evidence items from the accepted masks (``masks``: a subset, e.g. one entity a
        coordinator re-grounds on; ``margin``: a looser or tighter crop than the default)."""
        record = ctx.record
        extra = {} if margin is None else {"margin": float(margin)}
        vlm = self.backend("vqa")
        size = int(getattr(vlm, "image_size", 0) or ev.DEFAULT_INPUT_SIZE) if vlm is not None else ev.DEFAULT_INPUT_SIZE
        items: list[EvidenceItem] = []
        with _StageClock(record, Stage.EVIDENCE):
            for kind in kinds:
                ctx.report(Stage.EVIDENCE, f"building {EvidenceType(kind).value} evidence")
                item = ev.build_evidence(kind, ctx.pixels, ctx.window, ctx.image_rgb,
                                         record.masks if masks is None else masks, input_size=size, **extra)
                n = sum(1 for e in record.evidence if e.type == item.type)
                suffix = "" if n == 0 else f"_{n + 1}"
                item.image_files = ["slice.png"] + [
                    f"evidence_{item.type.value}{suffix}.png" for _ in item.images[1:]
                ]
                if item.fallback:
                    record.warn(f"{item.type.value} evidence fell back to the global image: {item.fallback}")
                record.evidence.append(item)
                items.append(item)
        ctx.report(Stage.EVIDENCE, f"{len(items)} evidence items", 1.0)
        return items

    # ----------------------------------------------------------------------------------
    # Stage 4: evidence-grounded VQA
    # ----------------------------------------------------------------------------------
    def answer(self, ctx: RunContext, items: Sequence[EvidenceItem]) -> list[Answer]:
        """One batched VQA call over ``items``; each pass parsed and appended to the record."""
        record = ctx.record
        if not items:
            return []
        ctx.report(Stage.ANSWER, "loading the VQA model")
        vlm = self.backend("vqa")
        if vlm is None:
            raise PipelineError(f"profile '{self.profile.name}' has no VQA model")
        prompts = _prompts()
        answers: list[Answer] = []
        with _StageClock(record, Stage.ANSWER) as clock:
            requests = [prompts.vqa_request(ctx.question, it) for it in items]
            ctx.report(Stage.ANSWER, f"answering with {len(items)} evidence types", 0.05)
            with clock.model():
                gens = _generate(vlm, requests, self.max_new_tokens)
            self._note_model(record, "vqa", vlm)
            if len(gens) != len(requests):
                raise PipelineError(f"the VQA model returned {len(gens)} answers for {len(requests)} requests")
            for it, req, gen in zip(items, requests, gens):
                record.calls.append(_call(Stage.ANSWER, "vqa", req, gen, it.image_files, it.type))
                think, text, violations, chars = _parse_answer(gen.text)
                span = answer_token_span(gen.tokens, gen.text, *chars) if chars else None
                a = Answer(
                    evidence=it.type,
                    call_index=len(record.calls) - 1,
                    think=think,
                    answer=text,
                    normalized=_normalize(text) if text else "",
                    format_violations=violations,
                    answer_token_span=span,
                    mean_answer_prob=mean_prob(gen.token_logprobs, span),
                )
                for v in violations:
                    record.warn(f"{it.type.value} answer: {v}")
                record.answers.append(a)
                answers.append(a)
        ctx.report(Stage.ANSWER, "answers parsed", 1.0)
        return answers

    # ----------------------------------------------------------------------------------
    # Stage 5: CARE-Flow vote
    # ----------------------------------------------------------------------------------
    def aggregate(self, ctx: RunContext, answers: Sequence[Answer] | None = None) -> VoteResult:
        record = ctx.record
        with _StageClock(record, Stage.REVIEW):
            result = vote(record.answers if answers is None else answers, _normalize)
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
def _needs_local_folder(spec: ModelSpec) -> bool:
    return not spec.bundled and spec.backend != "remote"


def _backend_location(spec: ModelSpec) -> str:
    """What identifies a backend instance: its folder, or for a remote model endpoint + name
    (two roles served by different endpoints must not share one client)."""
    if spec.backend == "remote":
        opts = spec.options
        return f"{opts.get('endpoint') or opts.get('base_url') or ''}#{opts.get('served_model') or spec.repo_id}"
    return str(spec.path()) if _needs_local_folder(spec) else spec.repo_id


def _remote_vlm(spec: ModelSpec) -> Any:
    from .remote.backend import RemoteVLMBackend

    return RemoteVLMBackend(spec)


def _build_coordinator(pipeline: "CarePipeline") -> Coordinator:
    """The profile's coordinator role, else the profile's VQA model coordinating locally."""
    from .coordinator import build_coordinator

    return build_coordinator(pipeline)


def _has_weights(spec: ModelSpec) -> bool:
    path = spec.path()
    return path.is_dir() and any(path.iterdir())


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


def _call(stage: Stage, role: str, req: VLMRequest, gen: Generation, files: list[str],
          evidence: EvidenceType | None = None) -> ModelCall:
    return ModelCall(
        stage=stage, role=role, prompt=req.prompt, system=req.system, prompt_text=gen.prompt_text,
        image_files=list(files), evidence=evidence, raw_output=gen.text, tokens=list(gen.tokens),
        token_logprobs=[float(x) for x in gen.token_logprobs], seconds=float(gen.seconds),
    )


def _generate(vlm: Any, requests: list[VLMRequest], max_new_tokens: int | None) -> list[Generation]:
    if max_new_tokens is None:
        return list(vlm.generate(requests))
    return list(vlm.generate(requests, max_new_tokens=max_new_tokens))


# --------------------------------------------------------------------------------------
# Adapters to the sibling modules (parsing, prompts, VLM/segmentation backends, MiniLM
# de-duplication). Kept in one place so an API change there touches only this section.
# --------------------------------------------------------------------------------------
def _build_segmenter(spec: ModelSpec) -> Any:
    from .segmentation import build_segmenter

    return build_segmenter(spec)


def _prompt_version() -> str:
    from . import prompts

    return str(getattr(prompts, "PROMPT_VERSION", ""))


class _Prompts:
    """Builds the VLMRequests from the prompts module's texts."""

    def entity_request(self, question: str, image: np.ndarray) -> VLMRequest:
        from . import prompts

        return VLMRequest(images=[image], prompt=prompts.entity_prompt(question), system=prompts.SYSTEM_PROMPT)

    def vqa_request(self, question: str, item: EvidenceItem) -> VLMRequest:
        from . import prompts

        # A fallen-back item carries only the slice: it must be asked as global evidence.
        kind = EvidenceType.GLOBAL if item.fallback else item.type
        return VLMRequest(images=list(item.images), prompt=prompts.vqa_prompt(question, kind, item.entities),
                          system=prompts.SYSTEM_PROMPT)


def _prompts() -> _Prompts:
    return _Prompts()


def _parse_entities(text: str, image_size: tuple[int, int]) -> tuple[list[Entity], list[str]]:
    from .parsing import parse_entities

    parsed = parse_entities(text, image_size=image_size)
    ents = [Entity(e.name, tuple(int(v) for v in e.box) if e.box is not None else None) for e in parsed.entities]
    return ents, list(parsed.violations)


def _parse_answer(text: str) -> tuple[str, str, list[str], tuple[int, int] | None]:
    """(think, answer, format violations, answer character span in ``text``)."""
    from .parsing import parse_think_answer

    p = parse_think_answer(text)
    return p.think, p.answer, list(p.violations), p.answer_span


def _normalize(text: str) -> str:
    from .parsing import normalize_answer

    return normalize_answer(text)


class _EntityDedup:
    """MiniLM de-duplication: names -> (kept names, merges grouped by the kept name)."""

    def __init__(self) -> None:
        self.info: ModelInfo | None = None
        # Pairs of the last call kept apart although similar, because they name opposite sides.
        self.last_blocked: list[Any] = []

    def __call__(self, names: Any) -> tuple[list[str], list[EntityMerge]]:
        from .entity_dedup import dedup_entities

        result = dedup_entities(list(names))
        self.last_blocked = list(result.blocked)
        if result.encoder is not None:
            self.info = result.encoder
        grouped: dict[str, EntityMerge] = {}
        for m in result.merges:
            g = grouped.setdefault(m.kept, EntityMerge(m.kept))
            g.merged.append(m.merged)
            g.similarity.append(float(m.cosine))
        return list(result.kept), list(grouped.values())


def score_mask_record(prob: np.ndarray, entity: str, backend: str, prompt_type: str, box: Box | None, tau: float) -> MaskRecord:
    """Confidence + tau from the segmentation package, as the record's MaskRecord."""
    from .segmentation.confidence import score_mask

    r = score_mask(prob, entity=entity, backend=backend, prompt_type=prompt_type, box=box, tau=tau)
    return MaskRecord(
        entity=entity, backend=backend, prompt_type=prompt_type,
        box=tuple(int(v) for v in box) if box is not None else None,
        confidence=float(r.confidence), accepted=bool(r.accepted), tau=float(r.tau), area_px=int(r.area_px),
        bbox=tuple(r.bbox) if r.bbox is not None else None,
        prob_stats=r.stats.to_dict() if r.stats is not None else {},
        mask=np.asarray(r.mask, dtype=bool),
    )
