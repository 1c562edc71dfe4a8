"""Reference lines of a multi-pane layout: where the other panes' slices cut this one.

The line's position is computed from the other pane's slice index with
:meth:`SliceGeometry.screen_position` and drawn through the view's
:meth:`~app.ui.slice_view.SliceView.image_to_widget`, so it follows zoom, pan and the
view's flip/rotate like everything else drawn over the image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QPainter, QPen

from app.study.reformat import Plane, SliceGeometry

if TYPE_CHECKING:
    from .slice_view import SliceView

# As in 3D Slicer: axial red, coronal green, sagittal yellow.
PLANE_COLORS: dict[Plane, tuple[int, int, int]] = {
    Plane.AXIAL: (228, 80, 72),
    Plane.CORONAL: (92, 196, 96),
    Plane.SAGITTAL: (232, 200, 64),
}


@dataclass(frozen=True)
class ReferenceLine:
    along: str  # "col": a vertical line at image column ``at``; "row": a horizontal one
    at: float  # continuous image coordinate of the other slice's centre
    plane: Plane  # the plane whose slice it is


def reference_line(geom: SliceGeometry, other: SliceGeometry, other_k: int) -> ReferenceLine | None:
    """Where slice ``other_k`` of ``other`` cuts a view with ``geom``; None if parallel."""
    if other.slice_axis == geom.slice_axis:
        return None
    arr = [0, 0, 0]  # array order [z, y, x]
    arr[other.slice_axis] = int(other_k)
    _, col, row = geom.screen_position((arr[2], arr[1], arr[0]))
    if other.slice_axis == geom.col_axis:
        return ReferenceLine("col", col + 0.5, other.plane)
    return ReferenceLine("row", row + 0.5, other.plane)


def lines_for(view: "SliceView", others: list["SliceView"]) -> list[ReferenceLine]:
    g = view.geometry_
    if g is None or view.volume is None:
        return []
    out = []
    for o in others:
        og = o.geometry_
        if o is view or og is None or o.volume is not view.volume or not o.isVisible():
            continue
        line = reference_line(g, og, o.slice_index)
        if line is not None and line not in out:
            out.append(line)
    return out


def line_endpoints(view: "SliceView", line: ReferenceLine) -> tuple[QPointF, QPointF]:
    """Widget end points of ``line`` across the whole slice."""
    g = view.geometry_
    assert g is not None
    w, h = g.image_size
    if line.along == "col":
        return view.image_to_widget(line.at, 0.0), view.image_to_widget(line.at, float(h))
    return view.image_to_widget(0.0, line.at), view.image_to_widget(float(w), line.at)


def reference_painter(others: Callable[[], list["SliceView"]], caption: Callable[["SliceView"], str]):
    """A painter for :attr:`SliceView.extra_painters`: the other panes' lines, the pane's
    frame in its plane colour and a one-line caption."""

    def paint(view: "SliceView", p: QPainter) -> None:
        panes = others()
        if len(panes) < 2:
            return  # one pane: nothing to relate to
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for line in lines_for(view, panes):
            pen = QPen(QColor(*PLANE_COLORS[line.plane], 200), 1.0)
            pen.setCosmetic(True)
            p.setPen(pen)
            p.drawLine(*line_endpoints(view, line))
        color = QColor(*PLANE_COLORS.get(view.plane, (160, 160, 160)))
        text = caption(view)
        pen = QPen(color, 3.0 if text.startswith("Active") else 1.0)
        p.setPen(pen)
        p.drawRect(QRectF(view.rect()).adjusted(1, 1, -2, -2))
        if text:
            fm = p.fontMetrics()
            at = QPointF(8, 8 + fm.ascent() + 2.2 * fm.height())  # under the top-left block
            p.setPen(QColor(0, 0, 0, 200))
            p.drawText(at + QPointF(1, 1), text)
            p.setPen(color)
            p.drawText(at, text)
        p.restore()

    return paint
