"""Drawing the measurements over the slice view: a transparent child widget of the view (mouse
events pass through to it), so the view's own painting is untouched. It is repainted with
the view (a child over a repainted area is repainted) and follows its size.

Each measurement on the displayed series, plane and slice is drawn with its value; the
selected one in another colour with its points as handles; the one being drawn dashed.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from app.study.measurements import MeasureKind, MeasureResult, Point

COLOUR = QColor(0, 220, 255)
SELECTED = QColor(255, 170, 40)
PREVIEW = QColor(255, 255, 255)

Shown = tuple[str, MeasureKind, tuple[Point, ...], "MeasureResult | None"]  # id, kind, points, numbers


class MeasureOverlay(QWidget):
    def __init__(self, view, shown: Callable[[], Sequence[Shown]], selected: Callable[[], str | None],
                 preview: Callable[[], "tuple[MeasureKind, tuple[Point, ...]] | None"]) -> None:
        super().__init__(view)
        self.view = view
        self._shown, self._selected, self._preview = shown, selected, preview
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setGeometry(view.rect())
        view.installEventFilter(self)
        self.show()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if obj is self.view and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.view.rect())
        return False

    def _w(self, p: Point) -> QPointF:
        return self.view.image_to_widget(p[0], p[1])

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        if self.view.geometry_ is None or not self.view.show_overlays:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        f = QFont(self.font())
        f.setPointSizeF(max(8.0, f.pointSizeF() * 0.95))
        p.setFont(f)
        sel = self._selected()
        for mid, kind, points, result in self._shown():
            colour = SELECTED if mid == sel else COLOUR
            self._shape(p, kind, points, colour, dashed=False)
            if mid == sel:
                self._handles(p, points, colour)
            if result is not None:
                self._label(p, kind, points, list(result.lines), colour)
        pv = self._preview()
        if pv is not None:
            self._shape(p, pv[0], pv[1], PREVIEW, dashed=True)
        p.end()

    def _shape(self, p: QPainter, kind: MeasureKind, points: tuple[Point, ...], colour: QColor, *, dashed: bool) -> None:
        pts = [self._w(q) for q in points]
        for width, c in ((3.5, QColor(0, 0, 0, 170)), (1.6, colour)):
            pen = QPen(c, width)
            pen.setCosmetic(True)
            if dashed:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            if kind.is_roi:
                rect = QRectF(pts[0], pts[1]).normalized()
                p.drawRect(rect) if kind is MeasureKind.RECTANGLE else p.drawEllipse(rect)
            else:
                for a, b in zip(pts, pts[1:]):
                    p.drawLine(a, b)
        if kind is MeasureKind.ANGLE and len(pts) == 3 and not dashed:
            self._arc(p, pts, colour)

    def _arc(self, p: QPainter, pts: list[QPointF], colour: QColor) -> None:
        a, v, c = pts
        r = min(24.0, 0.4 * min(math.hypot(a.x() - v.x(), a.y() - v.y()), math.hypot(c.x() - v.x(), c.y() - v.y())))
        if r < 4:
            return
        # Qt angles: degrees counter-clockwise from 3 o'clock, screen y pointing down.
        t1 = math.degrees(math.atan2(-(a.y() - v.y()), a.x() - v.x()))
        t2 = math.degrees(math.atan2(-(c.y() - v.y()), c.x() - v.x()))
        span = (t2 - t1 + 540.0) % 360.0 - 180.0
        pen = QPen(colour, 1.2)
        pen.setCosmetic(True)
        p.setPen(pen)
        p.drawArc(QRectF(v.x() - r, v.y() - r, 2 * r, 2 * r), int(t1 * 16), int(span * 16))

    def _handles(self, p: QPainter, points: tuple[Point, ...], colour: QColor) -> None:
        p.setPen(QPen(QColor(0, 0, 0), 1))
        p.setBrush(colour)
        for q in points:
            w = self._w(q)
            p.drawRect(QRectF(w.x() - 3.5, w.y() - 3.5, 7, 7))

    def _label(self, p: QPainter, kind: MeasureKind, points: tuple[Point, ...], lines: list[str], colour: QColor) -> None:
        pts = [self._w(q) for q in points]
        fm = p.fontMetrics()
        if kind is MeasureKind.ANGLE:
            at = pts[1] + QPointF(10, -8)
        elif kind.is_roi:
            rect = QRectF(pts[0], pts[1]).normalized()
            at = QPointF(rect.right() + 8, rect.top() + fm.ascent())
        else:
            end = max(pts, key=lambda q: q.x())
            at = end + QPointF(8, fm.ascent() / 2)
        for i, line in enumerate(lines):
            q = at + QPointF(0, i * fm.height())
            p.setPen(QColor(0, 0, 0, 210))
            p.drawText(q + QPointF(1, 1), line)
            p.setPen(colour)
            p.drawText(q, line)
