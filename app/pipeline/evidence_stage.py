"""Stage 3 of a run: the evidence items of the requested kinds, recorded on the run.

Split from the engine (modules stay under 500 lines). The options come from the profile's
``vqa`` role (:class:`~app.pipeline.profile_options.EvidenceOptions`, carried on the
:class:`~app.pipeline.context.RunContext`); the pixel spacing from the run's display frame
(``record.input.pixel_spacing``, None when uncalibrated: the crop is then square in pixels).
"""
from __future__ import annotations

from typing import Any, Sequence

from . import evidence as ev
from .context import RunContext, StageClock
from .profile_options import EvidenceOptions, typed_options
from .profiles import Profile
from .record import EvidenceItem, MaskRecord
from .types import EvidenceType, Stage
from .vocab import Role


def evidence_options(profile: Profile) -> EvidenceOptions:
    """The evidence options of ``profile``'s VQA role (defaults when it has none)."""
    spec = profile.get(Role.VQA)
    return typed_options(spec.options, EvidenceOptions) if spec is not None else EvidenceOptions()


def build_items(ctx: RunContext, kinds: Sequence[EvidenceType], vlm: Any, *,
                masks: Sequence[MaskRecord] | None = None, margin: float | None = None) -> list[EvidenceItem]:
    """Evidence items from the accepted masks, appended to ``ctx.record.evidence`` (``vlm``:
    the VQA backend, for its input size; ``masks``/``margin``: see ``CarePipeline.build_evidence``)."""
    record, opts = ctx.record, ctx.evidence
    extra: dict = {} if margin is None else {"margin": float(margin)}
    if ctx.volume.invert_display:
        extra["invert"] = True  # MONOCHROME1: the crop is inverted like the slice
    size = int(getattr(vlm, "image_size", 0) or ev.DEFAULT_INPUT_SIZE) if vlm is not None else ev.DEFAULT_INPUT_SIZE
    items: list[EvidenceItem] = []
    with StageClock(record, Stage.EVIDENCE):
        for kind in kinds:
            ctx.report(Stage.EVIDENCE, f"building {EvidenceType(kind).value} evidence")
            item = ev.build_evidence(kind, ctx.pixels, ctx.window, ctx.image_rgb,
                                     record.masks if masks is None else masks, input_size=size,
                                     spacing=record.input.pixel_spacing, global_evidence=opts.global_evidence,
                                     crop_entity=opts.crop_entity, question=ctx.question, **extra)
            n = sum(1 for e in record.evidence if e.type == item.type)
            suffix = "" if n == 0 else f"_{n + 1}"
            item.image_files = ["slice.png"] + [f"evidence_{item.type.value}{suffix}.png" for _ in item.images[1:]]
            if item.fallback:
                record.warn(f"{item.type.value} evidence fell back to the global image: {item.fallback}")
            record.evidence.append(item)
            items.append(item)
    ctx.report(Stage.EVIDENCE, f"{len(items)} evidence items", 1.0)
    return items
