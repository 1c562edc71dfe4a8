"""The study-scope run strategy: localise -> choose evidence slices -> the run's own strategy on
each -> aggregate. Wraps CARE-Flow or CARE-Coord (``inner``); the record's mode is the inner one.

The run's record (the one the audit store started) becomes the primary evidence slice's: its
input and stages are that slice's, so every section the audit already shows is literally about
that slice. Each other evidence slice runs in a record of its own (``EvidenceSlice.record``)
whose images are renamed ``sNNN_<name>`` so they sit beside run.json without clashing.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.pipeline.parsing import normalize_answer
from app.pipeline.record import RunRecord, StageTiming, utc_now
from app.pipeline.study_record import EvidenceSlice, StudyScope
from app.pipeline.types import Cancelled, PipelineError, Stage, WeightsMissingError
from app.pipeline.vocab import Mode, RunStatus

from .aggregate import aggregate
from .localise import localise
from .select import MAX_EVIDENCE_SLICES, carry_boxes, choose

if TYPE_CHECKING:
    from app.pipeline.context import RunContext
    from app.pipeline.strategies.base import RunStrategy

log = logging.getLogger(__name__)

LOCALISE_SHARE = 0.2  # of the progress bar; the evidence slices share the rest equally
SLICE_PNG = "slice.png"


def slice_prefix(k: int) -> str:
    return f"s{k:03d}_"


class StudyStrategy:
    """``host``: the pipeline (its stages, ``prepare`` and ``segmentation``); ``inner``: the
    strategy each evidence slice runs with."""

    def __init__(self, host: Any, inner: "RunStrategy", max_slices: int = MAX_EVIDENCE_SLICES) -> None:
        self.host, self.inner, self.max_slices = host, inner, int(max_slices)

    @property
    def mode(self) -> Mode:
        return self.inner.mode

    @property
    def stages(self) -> Any:  # the GUI's strategy cache compares this with its pipeline
        return self.host

    def run(self, ctx: "RunContext") -> None:
        record, volume = ctx.record, ctx.volume
        n = volume.num_slices
        study = StudyScope(asked_from_slice=ctx.slice_index, num_slices=n, plane=record.input.plane,
                           max_evidence_slices=self.max_slices)
        record.study = study  # before any work: a cancelled study run still says it was one
        if n < 2:
            raise PipelineError("a study-scope question needs a series of more than one slice; "
                                "this one has a single image (ask about the slice instead)")
        ctx.check_cancel()
        started = utc_now()
        loc = localise(self.host, ctx, lambda msg, f: _emit(ctx, Stage.MASKS, f"localising: {msg}",
                                                            LOCALISE_SHARE * f))
        record.timings.append(StageTiming(Stage.MASKS, loc.seconds, started, loc.model_seconds))
        if loc.backend is not None and loc.role is not None:
            self.host.note_model(record, loc.role, loc.backend)
        study.route, study.route_note = loc.route, loc.note
        study.localised, study.sampled_slices = loc.slices, loc.sampled
        study.mask3d, study.embedded_slices = loc.mask3d, loc.embedded
        study.localisation_seconds, study.localisation_records = loc.seconds, loc.records

        chosen, study.selection = choose(loc, ctx.slice_index, n, self.max_slices)
        study.evidence_slices = [c.index for c in chosen]
        study.evidence_numbers = [c.index + 1 for c in chosen]
        study.primary_slice = chosen[0].index
        seed = ctx.slice_index if ctx.boxes else None
        located = carry_boxes(loc, chosen, seed)
        span = (1.0 - LOCALISE_SHARE) / len(chosen)
        for i, c in enumerate(chosen):
            ctx.check_cancel()
            base = LOCALISE_SHARE + i * span
            sub = self.host.prepare(
                volume, c.index, ctx.question, window=ctx.window, mode=record.mode, cancel=ctx.cancel,
                progress=_slice_progress(ctx, c.index, n, i, len(chosen), base, span),
                boxes=list(ctx.boxes) if c.index == seed else [], discarded=ctx.discarded)
            sub.located = located.get(c.index, [])
            es = EvidenceSlice(index=c.index, number=c.index + 1, role=c.role, area_px=c.area_px,
                               confidence=c.confidence)
            study.slices.append(es)
            if i == 0:  # the run's own record becomes this slice's (module docstring)
                _adopt(record, sub.record)
                sub.record = record
                es.in_run, es.image_file, es.image = True, SLICE_PNG, record.slice_rgb
            else:
                es.image_file, es.image = slice_prefix(c.index) + SLICE_PNG, sub.record.slice_rgb
            try:
                self.inner.run(sub)
                es.status = RunStatus.COMPLETED
            except Cancelled:
                es.status = RunStatus.CANCELLED
                raise
            except WeightsMissingError:
                es.status = RunStatus.FAILED
                raise
            except PipelineError as exc:
                if i == 0:
                    raise
                es.status, es.error = RunStatus.FAILED, str(exc)
            except Exception as exc:  # a bug on one neighbour must not lose the primary's answer
                if i == 0:
                    raise
                log.exception("evidence slice %d failed", c.index)
                es.status, es.error = RunStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}"
            finally:
                self._summarise(ctx, es, sub.record, is_primary=i == 0)
            if i == 0:  # the primary's answer is one slice's, not the study's: it waits for the aggregation
                record.final_answer = ""
        agg = aggregate(ctx.question, study.slices)
        study.aggregation = agg
        record.final_answer = agg.winner_raw
        if not agg.winner:
            record.warn("no evidence slice gave a usable answer")
        _emit(ctx, Stage.REVIEW, f"study answer: {' '.join(agg.winner_raw.split())[:60] or '(none)'}", 1.0)

    def _summarise(self, ctx: "RunContext", es: EvidenceSlice, sub: RunRecord, *, is_primary: bool) -> None:
        """The slice's answer and scores into ``es``; a non-primary slice's record kept whole."""
        es.answer = sub.final_answer
        es.normalized = normalize_answer(es.answer, question=ctx.question) if es.answer else ""
        probs = [a.mean_answer_prob for a in sub.answers
                 if a.normalized == es.normalized and a.mean_answer_prob is not None]
        es.answer_prob = max(probs) if probs else None
        if sub.vote is not None:
            es.counts, es.independent_passes = dict(sub.vote.counts), int(sub.vote.independent_passes)
        if is_primary:
            return
        sub.status = es.status
        sub.finished = utc_now()
        if es.error:
            sub.errors.append(es.error)
        _prefix_files(sub, slice_prefix(es.index))
        es.run, es.record = sub, sub.to_dict()
        top = ctx.record
        top.timings.extend(sub.timings)
        for w in sub.warnings:  # what the run's own record says already is not repeated per slice
            if w not in top.warnings:
                top.warn(f"evidence slice {es.number}: {w}")
        top.errors.extend(f"evidence slice {es.number}: {e}" for e in sub.errors)


def study_strategy(host: Any, inner: "RunStrategy", max_slices: int = MAX_EVIDENCE_SLICES) -> StudyStrategy:
    return StudyStrategy(host, inner, max_slices)


def _adopt(record: RunRecord, sub: RunRecord) -> None:
    """The primary slice's input provenance onto the run's record (its sections follow)."""
    record.input = sub.input
    record.slice_rgb = sub.slice_rgb
    record.question_literal_tokens = list(sub.question_literal_tokens)
    for w in sub.warnings:
        record.warn(w)


def _prefix_files(rec: RunRecord, prefix: str) -> None:
    """Rename every file a slice record names, so its images can sit beside the study's."""
    for m in rec.masks:
        if m.png:
            m.png = prefix + m.png
    for item in rec.evidence:
        item.image_files = [prefix + f for f in item.image_files]
    for call in rec.calls:
        call.image_files = [prefix + f for f in call.image_files]


def _emit(ctx: "RunContext", stage: Stage, message: str, fraction: float) -> None:
    if ctx.progress is None:
        return
    try:
        ctx.progress(stage, message, min(max(fraction, 0.0), 1.0))
    except Exception:  # a broken progress sink must not lose the run
        log.exception("progress callback failed")


def _slice_progress(ctx: "RunContext", k: int, n: int, i: int, count: int, base: float, span: float):
    def progress(stage: Stage, message: str, fraction: float) -> None:
        _emit(ctx, stage, f"evidence slice {i + 1} of {count} (slice {k + 1}/{n}): {message}", base + span * fraction)

    return progress
