"""The terminal summary of a run (``care-viewer ask``), laid out from the presentation."""
from __future__ import annotations

from pathlib import Path

from app.pipeline.record import RunRecord
from app.pipeline.vocab import RunStatus, TieBreak

from .build import build_presentation
from .formatting import elide, printable
from .model import RunPresentation


def summary_lines(record: RunRecord, out_dir: Path | None = None,
                  presentation: RunPresentation | None = None) -> list[str]:
    """A few lines a radiologist can read in a terminal; the record holds everything."""
    p = presentation or build_presentation(record)
    lines = list(p.terminal_head)
    ent = record.entities
    lines.append(f"entities: {', '.join(e.name for e in ent.final) or '(none)'}")
    for m in ent.merges:
        lines.append(f"  merged {', '.join(m.merged)} -> {m.kept}")
    if ent.discarded:
        lines.append(f"  discarded by the clinician: {', '.join(ent.discarded)}")
    if p.masks:
        lines.append("masks:")
        width = max(len(m.entity) for m in p.masks)
        for m in p.masks:
            lines.append(f"  {m.entity:<{width}}  {m.backend} {m.prompt_type:<4}  C={m.confidence:.3f}  "
                         f"area={m.area_px} px  {m.verdict}" + (f"\n    {m.confidences_text}" if m.confidences_text else ""))
    if p.vote is not None:
        lines.append("votes:")
        lines.extend(v.terminal for v in p.vote.rows)
        if p.vote.passes_text:
            lines.append(f"  {p.vote.passes_text}")
        if record.vote is not None and record.vote.tie_break != TieBreak.NONE:
            lines.append(f"  tie: {p.vote.detail}")
    lines.extend(p.coordinator.terminal_lines)
    if p.study is not None:
        lines.extend(p.study.terminal_lines)
    if p.header.status_reason:
        lines.append(f"{p.header.status_label}: {p.header.status_reason}")
    if record.status == RunStatus.COMPLETED:
        lines.append(f"answer: {elide(record.final_answer, 200, trim=False) or '(none)'}")
        lines.append(f"scope: {p.header.scope}")
    lines.extend(f"warning: {w}" for w in p.warnings)
    lines.extend(f"error: {e}" for e in p.errors)
    if out_dir is not None:
        lines.append(f"record: {out_dir / 'run.json'}")
    # Questions, answers, entity names and file-derived text may carry terminal escapes.
    return [printable(ln) for ln in lines]
