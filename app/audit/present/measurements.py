"""The measurements recorded with a run, as rows (no Qt, no reportlab): shared by the PDF's
Measurements section and anything else that lists them.

The viewer appends one ``measurement`` override per measurement (detail: the measurement
dict and its numbers, ``new``: the value text) and a ``measurement_removed`` override when it
is deleted; the rows are the measurements still in effect, in the order they were made. An
edit is a new ``measurement`` row with the same id: the latest numbers are shown.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from app.pipeline.record import Override
from app.pipeline.vocab import OverrideKind

from .formatting import fmt_time

_TOOLS = {"length": "Length", "angle": "Angle", "rectangle": "Rectangle ROI", "ellipse": "Ellipse ROI"}


@dataclass(frozen=True)
class MeasurementRow:
    number: int  # 1-based, in the order made
    tool: str  # "Length", "Angle", "Rectangle ROI", "Ellipse ROI"
    value: str  # "12.34 mm", "mean 40 HU, SD 3.1, ...; area 120.0 mm² (369 px)"
    where: str  # "axial slice 34"
    who: str
    time: str


def _mid(o: Override) -> str:
    m: Any = (o.detail or {}).get("measurement")
    return str(m.get("id", "")) if isinstance(m, dict) else ""


def live_measurements(overrides: Sequence[Override]) -> dict[str, Override]:
    """Measurement id -> its latest ``measurement`` override, for those not removed since;
    in the order first made (an edit keeps its place)."""
    live: dict[str, Override] = {}
    for o in overrides:
        mid = _mid(o)
        if not mid:
            continue
        if o.kind == OverrideKind.MEASUREMENT:
            live[mid] = o
        elif o.kind == OverrideKind.MEASUREMENT_REMOVED:
            live.pop(mid, None)
    return live


def measurement_rows(overrides: Sequence[Override]) -> tuple[MeasurementRow, ...]:
    rows = []
    for n, o in enumerate(live_measurements(overrides).values(), 1):
        m = o.detail["measurement"]
        tool = _TOOLS.get(str(m.get("kind", "")), str(m.get("kind", "")))
        where = f"{m.get('plane', '?')} slice {int(m.get('slice', -1)) + 1}"
        rows.append(MeasurementRow(n, tool, o.new, where, o.author, fmt_time(o.time)))
    return tuple(rows)
