"""The coordinator section: how CARE-Coord decided, and its timeline."""
from __future__ import annotations

from app.audit.present import RunPresentation

from .widgets import DIM, ERROR, WARN, Section, esc, label, span


def fill_coordinator(sec: Section, p: RunPresentation) -> None:
    c = p.coordinator
    if not c.rows:
        sec.add(label("CARE-Flow: no coordinator", color=DIM))
        sec.set_title("Coordinator")
        return
    lines = []
    if c.decision_by:  # a CARE-Coord run's decision
        text = f"<b>Decided by {c.decision_by}</b>: {esc(c.decision_answer)}"
        if c.decision_changed is not None:
            text += " " + span(f"(differs from the vote: {esc(c.decision_changed)})", WARN)
        if c.decision_failure:
            text += "<br>" + span(esc(c.decision_failure), ERROR)
        if c.finding:  # the coordinator disagreed but may not revise: shown, never dropped
            text += "<br>" + span(esc(f"Review finding: {c.finding}"), WARN)
        lines.append(text)
    if c.options_text:
        lines.append(span(esc(c.options_text), DIM))
    for ev in c.rows:
        lines.append(f"{span(esc(ev.time), DIM)} <b>{esc(ev.kind)}</b> {esc(ev.summary)}")
    sec.add(label("<br>".join(lines), rich=True))
    sec.set_title(f"Coordinator ({len(c.rows)} steps)")
    sec.set_expanded(True)
