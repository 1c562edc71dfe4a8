"""Clinician tools on the slice view: drawing a box around a structure.

:class:`BoxDrawTool` is an event filter on a :class:`~app.ui.slice_view.SliceView`. While
active, a left-drag draws a rectangle (shown live as a dashed overlay box); on release it
emits ``box_drawn(slice_index, (x0, y0, x1, y1))`` in display-frame pixels (x1/y1
exclusive) -- the pipeline's ``Box`` convention; on the acquisition plane a screen pixel IS
a display-frame pixel (app.study.display_frame) -- so the box goes straight to the
box-prompted segmenter, which sees the slice exactly as drawn on. Other buttons keep their viewer meaning (right-drag
window/level, middle-drag pan, wheel scroll).

Boxes are drawn on the acquisition plane only (axial for a CT): the pipeline reasons
about one acquisition-plane slice, and a box on a reformat would not be one slice.
"""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal

from app.study.reformat import native_plane

PREVIEW_LAYER = "care:drawing"
SEGMENTING_LAYER = "care:drawing:segmenting"  # the released box, kept while LiteMedSAM runs
PREVIEW_COLOR = (255, 255, 255)
MIN_SIZE_PX = 3  # smaller drags are clicks, not boxes


class BoxDrawTool(QObject):
    box_drawn = Signal(int, tuple)  # slice index, (x0, y0, x1, y1)
    active_changed = Signal(bool)
    rejected = Signal(str)  # why a drag did not make a box (one line, for the status bar)

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self._active = False
        self._start: QPointF | None = None
        self._segmenting = False
        view.installEventFilter(self)

    @property
    def segmenting(self) -> bool:
        return self._segmenting

    def show_segmenting(self, slice_index: int, box: tuple[int, int, int, int], backend: str = "LiteMedSAM") -> None:
        """The drawn box stays on the image, labelled, with a busy cursor, until
        :meth:`end_segmenting` (the segmenter takes seconds on a CPU)."""
        ov = self.view.overlays
        if SEGMENTING_LAYER in ov:
            ov.remove(SEGMENTING_LAYER)
        ov.add_box(SEGMENTING_LAYER, slice_index, box, PREVIEW_COLOR, line_width=1.5,
                   label=f"segmenting with {backend}\u2026")
        self._segmenting = True
        self.view.setCursor(Qt.CursorShape.BusyCursor)

    def end_segmenting(self) -> None:
        if SEGMENTING_LAYER in self.view.overlays:
            self.view.overlays.remove(SEGMENTING_LAYER)
        self._segmenting = False
        if self._active:
            self.view.setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.view.unsetCursor()

    @property
    def active(self) -> bool:
        return self._active

    def set_active(self, on: bool) -> None:
        on = bool(on)
        if on == self._active:
            return
        self._active = on
        self._cancel_drag()
        if self._segmenting:
            pass  # the busy cursor stays until the segmenter returns
        elif on:
            self.view.setCursor(Qt.CursorShape.CrossCursor)
        else:
            self.view.unsetCursor()
        self.active_changed.emit(on)

    # ----- geometry ------------------------------------------------------------------
    def _on_native_plane(self) -> bool:
        v = self.view.volume
        return v is not None and self.view.plane == native_plane(v)

    def widget_rect_to_box(self, a: QPointF, b: QPointF) -> tuple[int, int, int, int] | None:
        """Two widget points -> a box in display-frame pixels (the screen's own), clipped to
        the image: the pixels under both corners are inside it."""
        g = self.view.geometry_
        if g is None:
            return None
        w, h = g.image_size
        cols, rows = [], []
        for p in (a, b):
            c, r = self.view.widget_to_image(p)
            cols.append(int(math.floor(min(max(c, 0.0), w - 1e-6))))
            rows.append(int(math.floor(min(max(r, 0.0), h - 1e-6))))
        return min(cols), min(rows), max(cols) + 1, max(rows) + 1

    # ----- events ---------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if not self._active or obj is not self.view:
            return False
        et = event.type()
        if et == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            if self.view.volume is None:
                return True
            if not self._on_native_plane():
                self.rejected.emit("Draw boxes on the axial (acquisition) plane: the pipeline reads that slice")
                return True
            self.view.setFocus(Qt.FocusReason.MouseFocusReason)
            self._start = event.position()
            return True
        if et == QEvent.Type.MouseMove and self._start is not None:
            self._preview(self._start, event.position())
            self.view.cursor_moved.emit(self.view.cursor_info_at(event.position()))
            return True
        if et == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            start, self._start = self._start, None
            self._remove_preview()
            if start is None:
                return True
            end = event.position()
            if abs(end.x() - start.x()) < MIN_SIZE_PX or abs(end.y() - start.y()) < MIN_SIZE_PX:
                return True
            box = self.widget_rect_to_box(start, end)
            if box is not None and box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                self.box_drawn.emit(self.view.slice_index, box)
            else:
                self.rejected.emit("The box is too small: drag around the whole structure")
            return True
        if et == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            if self._start is not None:
                self._cancel_drag()
            else:
                self.set_active(False)
            return True
        return False

    def _preview(self, a: QPointF, b: QPointF) -> None:
        box = self.widget_rect_to_box(a, b)
        if box is None:
            return
        ov = self.view.overlays
        if PREVIEW_LAYER in ov:
            ov.remove(PREVIEW_LAYER)
        ov.add_box(PREVIEW_LAYER, self.view.slice_index, box, PREVIEW_COLOR, line_width=1.5,
                   label=f"{box[2] - box[0]} x {box[3] - box[1]} px")

    def _remove_preview(self) -> None:
        if PREVIEW_LAYER in self.view.overlays:
            self.view.overlays.remove(PREVIEW_LAYER)

    def _cancel_drag(self) -> None:
        self._start = None
        self._remove_preview()
