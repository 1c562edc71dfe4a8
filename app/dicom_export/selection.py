"""Which of a run's masks are exported, and why the others are not.

Exported: every mask the gate accepted (C >= tau), and every mask a clinician accepted after
the run (a ``mask_accept`` override), unless the clinician's latest word on it is a reject or a
discard. Left out, each with a one-line reason the export reports: masks below tau that no
clinician accepted, masks the clinician rejected or discarded, and boxes drawn after the run
(the audit trail keeps their box and confidence, not their pixels, so there is no mask to write).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from app.pipeline.record import MaskRecord, Override, RunRecord
from app.pipeline.vocab import OverrideKind


@dataclass(frozen=True)
class ExportedMask:
    index: int  # into record.masks
    mask: MaskRecord
    segment_number: int  # 1-based, in export order
    clinician_accepted: bool  # below tau, accepted by a clinician override


@dataclass(frozen=True)
class MaskVerdict:
    """Every mask of the run after the clinician's overrides (the SR lists them all)."""

    index: int
    mask: MaskRecord
    accepted: bool  # the gate's verdict, or the clinician's latest accept/reject
    by_clinician: bool  # ``accepted`` is a clinician's override of the gate
    discarded: bool


@dataclass(frozen=True)
class MaskSelection:
    exported: tuple[ExportedMask, ...]
    left_out: tuple[str, ...]  # one line per mask (or drawn box) that is not exported
    verdicts: tuple[MaskVerdict, ...] = ()

    def exported_as(self, index: int) -> ExportedMask | None:
        return next((e for e in self.exported if e.index == index), None)


def _who(o: Override) -> str:
    return f" by {o.author}" if o.author else " by the clinician"


def select_masks(record: RunRecord, overrides: Sequence[Override] = ()) -> MaskSelection:
    verdict: dict[str, tuple[bool, Override]] = {}  # target -> (accepted, the override that said so)
    discarded: dict[str, tuple[bool, Override]] = {}
    drawn: list[str] = []
    for o in [*record.overrides, *overrides]:
        target = str(o.detail.get("target", o.target)) if o.detail else o.target
        if o.kind in (OverrideKind.MASK_ACCEPT, OverrideKind.MASK_REJECT):
            verdict[target] = (o.kind == OverrideKind.MASK_ACCEPT, o)
        elif o.kind in (OverrideKind.MASK_DISCARD, OverrideKind.MASK_RESTORE):
            discarded[target] = (o.kind == OverrideKind.MASK_DISCARD, o)
        elif o.kind == OverrideKind.BOX_ADDED:
            drawn.append(f"the box drawn after the run for {target!r} is not exported: the audit trail keeps its "
                         f"box and confidence, not its mask pixels")
    exported: list[ExportedMask] = []
    left_out: list[str] = []
    verdicts: list[MaskVerdict] = []
    for i, m in enumerate(record.masks):
        key = f"masks[{i}]"
        name = f"mask {i + 1} {m.entity!r} (C {m.confidence:.3f}, tau {m.tau:.2f})"
        accepted, by = verdict.get(key, (m.accepted, None))
        gone, gone_by = discarded.get(key, (False, None))
        verdicts.append(MaskVerdict(i, m, accepted, by is not None and accepted != m.accepted, gone))
        if gone and gone_by is not None:
            left_out.append(f"{name}: discarded{_who(gone_by)}")
        elif not accepted:
            left_out.append(f"{name}: rejected{_who(by)}" if by is not None else f"{name}: below tau, not accepted")
        elif m.mask is None:
            left_out.append(f"{name}: its mask image is missing from the run")
        elif not m.mask.any():
            left_out.append(f"{name}: the mask is empty")
        else:
            exported.append(ExportedMask(i, m, len(exported) + 1, clinician_accepted=not m.accepted))
    return MaskSelection(tuple(exported), tuple(left_out + drawn), tuple(verdicts))
