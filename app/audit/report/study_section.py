"""The report's study-scope section: the evidence slices the answer rests on (thumbnails of the
windowed slices the models saw), what each answered, and the aggregation rule. All wording comes
from :mod:`app.audit.present.study`."""
from __future__ import annotations

from typing import Any

from ..artifacts import encode_png
from .flowables import Ctx, image, para, table
from .keep import with_tail

THUMB_FRACTION = 0.22  # of the frame width


def study_scope(ctx: Ctx) -> list[Any]:
    from reportlab.platypus import Spacer

    view, study = ctx.pres.study, ctx.record.study
    if view is None or study is None:
        return []
    fw = ctx.frame_width
    tw = THUMB_FRACTION * fw
    out: list[Any] = [para(ctx, "Study scope: the evidence slices", "h2"), para(ctx, view.rests_on, "body")]
    if view.mask3d_rows:  # the 3-D lesion's figures first: the answer's size claims rest on them
        out.append(para(ctx, "3-D lesion", "h3"))
        out.append(table(ctx, [["Figure", "Value"], *[list(r) for r in view.mask3d_rows]], [0.3 * fw, 0.7 * fw]))
        out.append(Spacer(1, 6))
    images = {s.index: s.image for s in study.slices}
    rows: list[list[Any]] = [["Slice the models saw", "Evidence slice", "Answer on this slice"]]
    for r in view.rows:
        img = images.get(r.index)
        thumb: Any = (image(encode_png(img), tw - 6, max_height=tw) if img is not None
                      else para(ctx, "(image not available)", "small"))
        mark = " \u2014 gave the study's answer" if r.winner else ("" if r.counted else " \u2014 not counted")
        rows.append([thumb, [para(ctx, r.title, "cellb"), para(ctx, r.score_text, "cell")],
                     para(ctx, r.answer_text + mark, "cell")])
    # The rule, the decision and the counts read with the table: on the page of its last rows.
    notes = [para(ctx, text, "small") for text in (view.rule_text, view.decided_text, view.counts_text,
                                                    view.route_text, view.looked_at_text, view.selection_text,
                                                    view.primary_note) if text]
    return out + [with_tail(table(ctx, rows, [tw, 0.38 * fw, fw - tw - 0.38 * fw]), notes)]
