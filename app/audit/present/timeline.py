"""The CARE-Coord timeline as text: one line per event (panel), the event's JSON detail
(report), and the terminal's shorter narrative with the decision."""
from __future__ import annotations

import json
from typing import Any

from app.pipeline.record import RunRecord
from app.pipeline.vocab import REGROUND_LABEL, CoordEventKind, DecisionSource, Mode

from .formatting import elide, fmt_time, names
from .model import Coordinator, TimelineRow


def event_summary(ev: Any) -> str:
    """One line for a coordinator event from whichever typed payload it carries."""
    if ev.plan is not None:
        p = ev.plan
        return f"evidence {names(p.evidence)}" + (f": {p.rationale}" if p.rationale else "")
    if ev.round is not None:
        x = ev.round
        return f"round {x.round}: {names(x.evidence)}" + (f" ({x.reason})" if x.reason else "")
    if ev.reground is not None:
        x = ev.reground
        u = "n/a" if x.uncertainty is None else f"{x.uncertainty:.2f}"
        return (f"{REGROUND_LABEL}: uncertainty {u} vs {x.threshold:.2f} -> {x.action}"
                + (f" ({x.reason})" if x.reason else ""))
    if ev.review is not None:
        x = ev.review
        return (f"round {x.round}: {x.action} {x.candidate}" + (f": {x.rationale}" if x.rationale else "")
                + (f". Finding: {x.finding}" if x.finding else ""))
    if ev.decision is not None:
        x = ev.decision
        return f"{x.final_answer or '(none)'} (from {x.source})"
    if ev.error:
        return ev.error
    return ", ".join(f"{k}={v}" for k, v in (ev.detail or {}).items())


def _short(text: str, limit: int = 60) -> str:
    return elide(text, limit, trim=False)


def options_text(record: RunRecord) -> str:
    """Which coordinator options the run had on ("" for a record that predates them)."""
    o = record.coordinator_settings
    if o is None:
        return ""
    revise = ("may revise: yes (the review may replace the experts' vote answer)" if o.may_revise else
              "may revise: no (the review cannot replace the experts' vote answer; a different answer "
              "is recorded as a finding)")
    reground = (f"on (uncertainty threshold {o.uncertainty_threshold:g})" if o.reground else "off")
    return f"Coordinator options: {revise}; {REGROUND_LABEL}: {reground}; at most {o.max_extra_rounds} extra rounds."


def finding(record: RunRecord) -> str:
    return next((ev.review.finding for ev in reversed(record.coordinator)
                 if ev.review is not None and ev.review.finding), "")


def terminal_lines(record: RunRecord) -> list[str]:
    """The timeline in a few lines (options, plan, rounds, re-grounding, reviews, decision)."""
    lines = [options_text(record)] if record.coordinator_settings is not None else []
    for ev in record.coordinator:
        if ev.plan is not None:
            lines.append(f"coordinator plan: {names(ev.plan.evidence)} ({_short(ev.plan.rationale, 100)})")
        elif ev.round is not None and ev.round.round > 0:
            lines.append(f"  round {ev.round.round}: {names(ev.round.evidence)} ({_short(ev.round.reason, 100)})")
        elif ev.reground is not None:
            lines.append(f"  {REGROUND_LABEL}: {ev.reground.action} ({_short(ev.reground.reason, 120)})")
        elif ev.review is not None:
            rv = ev.review
            lines.append(f"  review: {rv.action} {rv.candidate} (rests on {', '.join(rv.rests_on)}; "
                         f"{_short(rv.rationale, 80)})")
            if rv.finding:
                lines.append(f"  review finding: {rv.finding}")
        elif ev.kind == CoordEventKind.FAILURE:
            lines.append(f"  coordinator failed: {_short(ev.error, 160)}")
    d = record.coordinator_decision
    if d is not None:
        if d.source == DecisionSource.VOTE:
            lines.append("coordinator: no usable decision; the CARE-Flow vote answer stands")
        elif d.changed_vote:
            lines.append(f"coordinator changed the vote answer {d.vote_answer!r} -> {_short(d.final_answer)!r}")
        else:
            lines.append(f"coordinator kept the vote answer {d.vote_answer!r}")
    return lines


def coordinator(record: RunRecord) -> Coordinator:
    rows = tuple(TimelineRow(fmt_time(e.time), str(e.kind), event_summary(e),
                             json.dumps(e.detail, ensure_ascii=False, indent=None)) for e in record.coordinator)
    d = record.coordinator_decision
    by = answer = failure = ""
    changed: str | None = None
    if d is not None:
        by = "the review" if d.source == DecisionSource.REVIEW else "the CARE-Flow vote"
        answer = d.final_answer or "(none)"
        changed = d.vote_answer if d.changed_vote else None
        failure = d.failure
    empty = "CARE-Flow: no coordinator." if record.mode == Mode.FLOW else "No coordinator events were recorded."
    return Coordinator(rows, by, answer, changed, failure, tuple(terminal_lines(record)), empty,
                       options_text(record), finding(record))
