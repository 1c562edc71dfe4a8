"""The measuring tools' mouse and keys on the slice view (an event filter, like the Draw box
tool): while a tool is on, left-drag draws a length, a rectangle or an ellipse; the angle
takes three clicks (first arm end, vertex, second arm end). Dragging a point of an existing
measurement on the slice moves it (an edit); a click without a drag selects the measurement
under the cursor. Esc cancels a drawing in progress, a second Esc turns the tool off.
Right-drag (window/level), middle-drag (pan) and the wheel keep their viewer meaning.

Points are continuous screen-pixel coordinates ``(col, row)`` of the view's slice, clamped
to the image; the controller (:mod:`.measure_controller`) turns them into measurements.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal

from app.study.measurements import MeasureKind, Measurement, Point

CLICK_PX = 3.0  # a press and release closer than this (screen px) is a click, not a drag
HANDLE_PX = 7.0  # grab radius of a measurement's point

HandleAt = Callable[[QPointF], "tuple[Measurement, int] | None"]


class MeasureTool(QObject):
    drawn = Signal(object, tuple)  # MeasureKind, points
    edited = Signal(object)  # Measurement with moved points (same id)
    clicked = Signal(QPointF)  # a click without a drag (widget point): select what is there
    kind_changed = Signal(object)  # MeasureKind | None
    preview_changed = Signal()
    rejected = Signal(str)

    def __init__(self, view, handle_at: HandleAt | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self._kind: MeasureKind | None = None
        self._handle_at = handle_at or (lambda _p: None)
        self._press: QPointF | None = None  # widget point of the left press
        self._points: list[Point] = []  # fixed points of the shape being drawn
        self._editing: tuple[Measurement, int] | None = None
        self.preview: tuple[MeasureKind, tuple[Point, ...]] | None = None  # drawn dashed by the overlay
        view.installEventFilter(self)

    @property
    def kind(self) -> MeasureKind | None:
        return self._kind

    @property
    def busy(self) -> bool:
        """A shape or an edit is in progress."""
        return bool(self._points) or self._editing is not None

    def set_kind(self, kind: MeasureKind | None) -> None:
        kind = MeasureKind(kind) if kind is not None else None
        if kind == self._kind:
            return
        self.cancel()
        self._kind = kind
        if kind is None:
            self.view.unsetCursor()
        else:
            self.view.setCursor(Qt.CursorShape.CrossCursor)
        self.kind_changed.emit(kind)

    def cancel(self) -> None:
        self._press = None
        self._points = []
        self._editing = None
        self._set_preview(None)

    # ----- geometry ------------------------------------------------------------------
    def image_point(self, p: QPointF) -> Point | None:
        """Widget point -> (col, row) clamped to the image; None off the image."""
        g = self.view.geometry_
        if g is None:
            return None
        c, r = self.view.widget_to_image(p)
        w, h = g.image_size
        return min(max(c, 0.0), float(w)), min(max(r, 0.0), float(h))

    def _inside(self, p: QPointF) -> bool:
        g = self.view.geometry_
        if g is None:
            return False
        c, r = self.view.widget_to_image(p)
        w, h = g.image_size
        return 0 <= c <= w and 0 <= r <= h

    # ----- events ---------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if self._kind is None or obj is not self.view:
            return False
        et = event.type()
        left = et in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease) and \
            event.button() == Qt.MouseButton.LeftButton
        if et == QEvent.Type.MouseButtonPress and left:
            self._on_press(event.position())
            return True
        if et == QEvent.Type.MouseMove:
            self._on_move(event.position())
            return False  # the view still updates the cursor readout
        if et == QEvent.Type.MouseButtonRelease and left:
            self._on_release(event.position())
            return True
        if et == QEvent.Type.MouseButtonDblClick and event.button() == Qt.MouseButton.LeftButton:
            return True  # a fast second click of the angle is a press already handled
        if et == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            if self.busy:
                self.cancel()
            else:
                self.set_kind(None)
            return True
        return False

    def _on_press(self, pos: QPointF) -> None:
        self.view.setFocus(Qt.FocusReason.MouseFocusReason)
        if self.view.volume is None:
            return
        if not self._points:
            hit = self._handle_at(pos)
            if hit is not None:
                self._editing = hit
                self._press = pos
                return
        if not self._inside(pos):
            self.rejected.emit("Measure on the image: start inside it")
            return
        p = self.image_point(pos)
        assert p is not None
        self._press = pos
        if self._kind is MeasureKind.ANGLE:
            self._points.append(p)
            if len(self._points) == 3:
                pts, self._points = tuple(self._points), []
                self._set_preview(None)
                self.drawn.emit(self._kind, pts)
            else:
                self._set_preview((self._kind, tuple(self._points) + (p,)))
        else:
            self._points = [p]
            self._set_preview((self._kind, (p, p)))

    def _on_move(self, pos: QPointF) -> None:
        p = self.image_point(pos)
        if p is None:
            return
        if self._editing is not None and self._press is not None:
            m, i = self._editing
            pts = list(m.points)
            pts[i] = p
            self._set_preview((m.kind, tuple(pts)))
        elif self._points and self._kind is not None:
            self._set_preview((self._kind, tuple(self._points) + (p,)))

    def _on_release(self, pos: QPointF) -> None:
        press, self._press = self._press, None
        if press is None:
            return
        moved = (pos - press).manhattanLength() >= CLICK_PX
        if self._editing is not None:
            (m, i), self._editing = self._editing, None
            self._set_preview(None)
            p = self.image_point(pos)
            if moved and p is not None:
                pts = list(m.points)
                pts[i] = p
                self.edited.emit(m.moved(tuple(pts)))
            else:
                self.clicked.emit(pos)
            return
        if self._kind is MeasureKind.ANGLE or not self._points:
            return
        start, self._points = self._points[0], []
        self._set_preview(None)
        end = self.image_point(pos)
        if not moved or end is None:
            self.clicked.emit(pos)
            return
        self.drawn.emit(self._kind, (start, end))

    def _set_preview(self, preview: tuple[MeasureKind, tuple[Point, ...]] | None) -> None:
        self.preview = preview
        self.preview_changed.emit()
