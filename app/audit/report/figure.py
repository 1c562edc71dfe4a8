"""The report's main figure: the composited slice with its orientation markers and scale bar
(vector text and lines around the image, never drawn into its pixels), the zoom-in crop beside
it, and the legend below, all on one page (a legend longer than a page flows on from it)."""
from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from app.pipeline.record import Entity
from app.pipeline.types import EvidenceType
from app.pipeline.vocab import EntitySource

from ..artifacts import encode_png
from .composite import LegendEntry, composite
from .flowables import Ctx, clip, image, para, rgb, table
from .keep import largest_fitting, stack_height

CLINICIAN_BOX = "clinician box"

EDGES = ("left", "right", "top", "bottom")
_NICE_MM = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_PAD = 13.0  # points around the image for the edge letters
_BAR_ROW = 12.0  # points below the bottom letter for the scale bar
MIN_SCALE = 0.5  # the smallest the figure is drawn (of its full size) to keep its legend on its page


def edge_markers(labels: Any) -> dict[str, str]:
    """The recorded edge letters ({} when unknown), each cleaned to a short label; nothing invented."""
    if not isinstance(labels, dict):
        return {}
    out = {}
    for edge in EDGES:
        v = str(labels.get(edge) or "").strip()
        if v and len(v) <= 4 and v.isalpha():
            out[edge] = v.upper()
    return out


def calibration(spacing: Any) -> tuple[float, float] | None:
    """(col mm, row mm) per pixel when recorded and usable, else None."""
    try:
        col, row = (float(v) for v in spacing)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) and v > 0 for v in (col, row)):
        return None
    return col, row


def scale_bar_mm(col_mm: float, width_px: int) -> int:
    """The longest round length (mm) that spans at most 30 % of the image width."""
    fits = [mm for mm in _NICE_MM if mm / col_mm <= 0.3 * width_px]
    return fits[-1] if fits else _NICE_MM[0]


def marked_image(png: bytes, px_size: tuple[int, int], width: float, max_height: float,
                 markers: dict[str, str], cal: tuple[float, float] | None, font: str, bold: str) -> Any:
    """A flowable: the image at most ``width`` x ``max_height``, the edge letters outside its four
    edges, and the scale bar under it (a horizontal bar: mm per column)."""
    from reportlab.lib import colors
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Flowable

    w_px, h_px = px_size
    scale = min((width - 2 * _PAD) / w_px, max_height / h_px)
    dw, dh = w_px * scale, h_px * scale
    bar = None if cal is None else scale_bar_mm(cal[0], w_px)

    class _Marked(Flowable):
        def wrap(self, aw: float, ah: float) -> tuple[float, float]:
            self.width, self.height = dw + 2 * _PAD, dh + 2 * _PAD + (_BAR_ROW if bar else 0)
            return self.width, self.height

        def draw(self) -> None:
            c = self.canv
            x0, y0 = _PAD, _PAD + (_BAR_ROW if bar else 0)
            c.drawImage(ImageReader(io.BytesIO(png)), x0, y0, dw, dh)
            c.saveState()
            c.setFillColor(colors.HexColor("#1F3A5F"))
            c.setFont(bold, 9)
            mid_x, mid_y = x0 + dw / 2, y0 + dh / 2
            if "left" in markers:
                c.drawCentredString(x0 - _PAD / 2, mid_y - 3, markers["left"])
            if "right" in markers:
                c.drawCentredString(x0 + dw + _PAD / 2, mid_y - 3, markers["right"])
            if "top" in markers:
                c.drawCentredString(mid_x, y0 + dh + 3, markers["top"])
            if "bottom" in markers:
                c.drawCentredString(mid_x, y0 - 9, markers["bottom"])
            if bar:
                length = bar / cal[0] * scale  # mm -> image pixels -> points
                bx, by = x0 + dw - length, 5.0
                c.setStrokeColor(colors.black)
                c.setLineWidth(1.6)
                c.line(bx, by, bx + length, by)
                c.setLineWidth(0.8)
                c.line(bx, by - 2.5, bx, by + 2.5)
                c.line(bx + length, by - 2.5, bx + length, by + 2.5)
                c.setFillColor(colors.black)
                c.setFont(font, 7)
                c.drawRightString(bx - 3, by - 2.4, f"{bar} mm")
            c.restoreState()

    return _Marked()


def _legend(ctx: Ctx, legend: list[LegendEntry], width: float) -> Any:
    rows, extra = [], []
    for i, e in enumerate(legend):
        if e.accepted is None:
            text = e.note
        else:
            text = (f"C = {e.confidence:.2f}, " + ("accepted (filled)" if e.accepted else "discarded (outline only)")
                    + ("" if e.drawn else ", mask image missing"))
        rows.append(["", para(ctx, clip(e.label, 160), "cellb"), para(ctx, text, "cell")])
        extra.append(("BACKGROUND", (0, i), (0, i), rgb(e.colour)))
        extra.append(("BOX", (0, i), (0, i), 0.6, rgb((90, 90, 90))))
    if not rows:
        return para(ctx, "No masks were produced for this run.", "caption")
    return table(ctx, rows, [10, 0.38 * width, width - 0.38 * width - 10], header=False, extra=extra)


def _frame_caption(markers: dict[str, str], cal: tuple[float, float] | None, px: tuple[int, int]) -> str:
    if markers:
        found = ", ".join(f"{e} {markers[e]}" for e in EDGES if e in markers)
        orient = f"Edge letters as recorded with the run ({found})."
    else:
        orient = "Orientation unknown: the run records no patient directions, so no edge letters are shown."
    if cal is None:
        scale = "No calibration: the image records no pixel spacing, so no scale bar is drawn."
    else:
        col, row = cal
        bar = scale_bar_mm(col, px[0])
        scale = (f"Scale bar {bar} mm (pixel spacing {col:g} × {row:g} mm"
                 + ("; horizontal" if abs(col - row) > 1e-6 else "") + ").")
    return f"{orient} {scale}"


def figure(ctx: Ctx, slice_image: np.ndarray | None, note: str) -> list[Any]:
    """The heading, the figure and its legend as one group that never breaks over a page: when
    the three are taller than a page the images are scaled down until they fit (no further than
    MIN_SCALE); a legend too long even then flows on over pages, its first row still on the
    figure's page."""
    from reportlab.platypus import KeepTogether, Spacer

    r = ctx.record
    heading = para(ctx, "Slice, masks and evidence", "h2")
    if slice_image is None:
        return [heading, para(ctx, f"The slice image is not available: {note or 'not recorded'}.", "body")]
    # The drawn boxes are input: from the record's input when the run stopped before stage 1.
    drawn = [Entity(CLINICIAN_BOX, tuple(b), EntitySource.CLINICIAN) for b in r.input.clinician_boxes]
    img, legend = composite(slice_image, r.masks, r.evidence, list(r.entities.final) + drawn)
    fw = ctx.frame_width
    png, px = encode_png(img), (img.shape[1], img.shape[0])
    crop = next((e for e in r.evidence if e.type == EvidenceType.CROP and not e.fallback and len(e.images) > 1), None)
    crop_png = None if crop is None else encode_png(crop.images[1])
    legend_rows = _legend(ctx, legend, fw)

    def group(scale: float, rows: Any = legend_rows) -> list[Any]:
        return [heading, _figure_row(ctx, png, px, crop, crop_png, scale), Spacer(1, 3), rows]

    limit = ctx.frame_height - 1  # a point's slack: the frame's own arithmetic rounds too
    scale = largest_fitting(lambda s: stack_height(group(s), fw), limit, MIN_SCALE)
    if scale is None:  # the legend alone is too long: the figure and the legend's first row
        first = _legend(ctx, legend[:1], fw)
        scale = largest_fitting(lambda s: stack_height(group(s, first), fw), limit, 0.05) or 0.05
    return [KeepTogether(group(scale))]


def _figure_row(ctx: Ctx, png: bytes, px: tuple[int, int], crop: Any, crop_png: bytes | None, scale: float) -> Any:
    """The slice (with its edge letters, scale bar and caption) beside the zoom-in crop (with its
    caption): one table row, so each image keeps its caption; ``scale`` of the full size."""
    from reportlab.platypus import Table, TableStyle

    r = ctx.record
    fw = ctx.frame_width
    left_w, right_w = 0.56 * fw, 0.44 * fw
    markers, cal = edge_markers(r.input.edge_labels), calibration(r.input.pixel_spacing)
    left = [marked_image(png, px, left_w - 8, scale * (left_w - 2 * _PAD), markers, cal,
                         ctx.fonts.regular, ctx.fonts.bold),
            para(ctx, f"Slice {r.input.slice_index + 1}/{r.input.num_slices} as the models saw it, "
                      "with mask overlays and the zoom-in crop. " + _frame_caption(markers, cal, px), "caption")]
    if crop is not None and crop_png is not None:
        x0, y0, x1, y1 = crop.crop_rect or (0, 0, 0, 0)
        ents = clip(", ".join(crop.entities), 200)
        right = [image(crop_png, right_w - 8, max_height=scale * right_w),
                 para(ctx, f"Zoom-in crop evidence: slice pixels x {x0}–{x1}, y {y0}–{y1}, resampled to "
                           f"{crop.images[1].shape[1]}×{crop.images[1].shape[0]} from the original intensities"
                           + (f" (entities: {ents})" if ents else "") + ".", "caption")]
    else:
        why = next((e.fallback for e in r.evidence if e.type == EvidenceType.CROP and e.fallback), None)
        right = [para(ctx, "No zoom-in crop evidence" + (f": {clip(why, 300)}" if why else " in this run") + ".",
                      "caption")]
    t = Table([[left, right]], colWidths=[left_w, right_w], hAlign="LEFT")
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return t
