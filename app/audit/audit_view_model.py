"""The audit panel's state without Qt: which masks it lists and shows, which the clinician
discarded (from the run's overrides and since), and the edited evidence for a re-ask.

Overlay layer names (``care:mask:3``, ``care:drawn:0``, ``care:crop:1``) are the keys that
tie a row in the panel to its layer on the viewer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from app.pipeline.record import MaskRecord, Override, RunRecord
from app.pipeline.types import EvidenceType
from app.pipeline.vocab import EntitySource, OverrideKind

from .palette import mask_colour
from .present import mask_row

LAYER_PREFIX = "care:"
DRAWING_LAYER = f"{LAYER_PREFIX}drawing"  # the box being drawn: not the panel's to clear
Box = tuple[int, int, int, int]


def mask_key(index: int) -> str:
    return f"{LAYER_PREFIX}mask:{index}"


def drawn_key(n: int) -> str:
    return f"{LAYER_PREFIX}drawn:{n}"


def crop_key(evidence_index: int) -> str:
    return f"{LAYER_PREFIX}crop:{evidence_index}"


def is_mask_key(key: str) -> bool:
    return key.startswith(f"{LAYER_PREFIX}mask:") or key.startswith(f"{LAYER_PREFIX}drawn:")


@dataclass
class MaskEntry:
    """One mask shown in the panel: from the run, or drawn by the clinician since."""

    key: str  # overlay layer name
    mask: MaskRecord
    index: int | None  # index into record.masks; None for a box drawn after the run
    color: tuple[int, int, int]
    slice_index: int
    discarded: bool = False  # by the clinician (override)
    drawn_box: Box | None = None

    @property
    def shown_by_default(self) -> bool:
        return self.mask.accepted and not self.discarded


def discarded_targets(overrides: Sequence[Override]) -> set[str]:
    """Targets ("masks[2]") whose latest discard/restore override is a discard."""
    state: dict[str, bool] = {}
    for o in overrides:
        if o.kind in (OverrideKind.MASK_DISCARD, OverrideKind.MASK_RESTORE):
            state[str(o.detail.get("target", ""))] = o.kind == OverrideKind.MASK_DISCARD
    return {t for t, on in state.items() if on}


def run_entries(record: RunRecord, overrides: Sequence[Override] = ()) -> list[MaskEntry]:
    """The run's masks as entries; discards recorded earlier (a reopened run) show as discarded."""
    k = record.input.slice_index
    gone = discarded_targets(overrides)
    return [MaskEntry(mask_key(i), m, i, mask_colour(i), k, discarded=f"masks[{i}]" in gone)
            for i, m in enumerate(record.masks)]


def drawn_entry(entries: Sequence[MaskEntry], mask: MaskRecord, slice_index: int, box: Box) -> MaskEntry:
    """A box drawn since the run: the next drawn key and a colour no listed mask has."""
    n = sum(1 for e in entries if e.index is None)
    used = {e.color for e in entries}
    color = next((mask_colour(i) for i in range(len(entries), len(entries) + 10) if mask_colour(i) not in used),
                 mask_colour(len(entries)))
    return MaskEntry(drawn_key(n), mask, None, color, slice_index, drawn_box=box)


def edited_evidence(record: RunRecord | None, entries: Sequence[MaskEntry]) -> tuple[list[Box], set[str]]:
    """(boxes, discarded entity names) for a re-ask: the run's clinician boxes and the new
    ones, minus what the clinician discarded."""
    boxes: list[Box] = []
    discarded: set[str] = set()
    if record is not None:
        dropped = {e.mask.entity for e in entries if e.discarded and e.index is not None}
        for ent in record.entities.final:
            if ent.source == EntitySource.CLINICIAN and ent.box is not None and ent.name not in dropped:
                boxes.append(tuple(ent.box))
        discarded = {n for n in dropped if not n.startswith("clinician region")}
        discarded |= set(record.entities.discarded)
    boxes += [e.drawn_box for e in entries if e.index is None and not e.discarded and e.drawn_box]
    return boxes, discarded


def has_edits(entries: Sequence[MaskEntry]) -> bool:
    return any(e.discarded for e in entries) or any(e.index is None for e in entries)


def edits_text(entries: Sequence[MaskEntry]) -> str:
    """"Edited evidence: 1 mask discarded, 2 new boxes — re-ask to use it" ("" without edits)."""
    n_disc = sum(1 for e in entries if e.discarded)
    n_new = sum(1 for e in entries if e.index is None and not e.discarded)
    parts = []
    if n_disc:
        parts.append(f"{n_disc} mask{'s' if n_disc > 1 else ''} discarded")
    if n_new:
        parts.append(f"{n_new} new box{'es' if n_new > 1 else ''}")
    if not parts:
        return ""
    # A new question on the run's slice takes the new boxes too (not the discards: it starts afresh).
    use = "re-ask to use it" + (" (a new question on this slice uses the new boxes too)" if n_new else "")
    return "Edited evidence: " + ", ".join(parts) + " \u2014 " + use


def masks_title(entries: Sequence[MaskEntry]) -> str:
    n_acc = sum(1 for e in entries if e.mask.accepted and not e.discarded)
    return f"Masks ({n_acc} of {len(entries)} used)"


def mask_state(entry: MaskEntry) -> tuple[str, str]:
    """(text, tone) of a mask row's state: tone "discarded" | "accepted" | "below"."""
    if entry.discarded:
        text, tone = "discarded by you", "discarded"
    else:
        text = mask_row(entry.index or 0, entry.mask).state_text
        tone = "accepted" if entry.mask.accepted else "below"
    if entry.index is None:
        text += " \u00b7 new box"
    return text, tone


def evidence_key(record: RunRecord, evidence_index: int, entries: Sequence[MaskEntry]) -> str | None:
    """The layer an evidence item is shown by: its crop box, else the first mask it used."""
    item = record.evidence[evidence_index]
    if item.type == EvidenceType.CROP:
        return crop_key(evidence_index)
    return next((e.key for e in entries if e.mask.entity in item.entities), None)
