"""The report's Measurements section: the viewer measurements recorded with the run (length,
angle, ROI statistics), as the clinician made them. Laid out from
:func:`app.audit.present.measurements.measurement_rows`; absent when the run has none."""
from __future__ import annotations

from typing import Any, Sequence

from app.pipeline.record import Override

from ..present.measurements import measurement_rows
from .flowables import Ctx, para, table
from .keep import lead


def measurements(ctx: Ctx, overrides: Sequence[Override]) -> list[Any]:
    rows_in = measurement_rows(list(ctx.record.overrides) + list(overrides))
    if not rows_in:
        return []
    fw = ctx.frame_width
    rows: list[list[Any]] = [["#", "Tool", "Value", "Where", "By"]]
    rows += [[str(r.number), r.tool, r.value, r.where, r.who or "-"] for r in rows_in]
    note = ("Measured in the viewer on the run's series; ROI statistics over the pixels whose centres "
            "lie inside the shape, in modality units (SD: population).")
    return [para(ctx, "Measurements", "h2"), lead(para(ctx, note, "small")),  # the note introduces the table
            table(ctx, rows, [0.05 * fw, 0.15 * fw, 0.48 * fw, 0.18 * fw, 0.14 * fw])]
