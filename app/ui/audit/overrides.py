"""The clinician overrides section: every change appended after the run, newest last."""
from __future__ import annotations

from typing import Sequence

from app.audit.present import OverrideRow

from .widgets import DIM, Section, esc, label, span


def fill_overrides(sec: Section, rows: Sequence[OverrideRow]) -> None:
    if not rows:
        sec.add(label("None. Discarding a mask, drawing a box or re-asking is recorded here; "
                      "the original run is never changed.", color=DIM))
        sec.set_title("Clinician overrides")
        return
    lines = []
    for o in rows:
        who = f" by {o.who}" if o.who else ""
        # The sentence already carries the note's facts (entity, confidence, box count).
        lines.append(f"{span(esc(o.time) + esc(who), DIM)}<br>{esc(o.sentence)}")
    sec.add(label("<br>".join(lines), rich=True))
    sec.set_title(f"Clinician overrides ({len(rows)})")
