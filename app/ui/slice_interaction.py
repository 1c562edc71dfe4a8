"""Mouse and keyboard on the slice view: wheel scrolls (Ctrl zooms), keys navigate, and a
drag pans, sets window/level or zooms depending on the button and the tool (part of
:class:`~app.ui.slice_view.SliceView`)."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QKeyEvent, QMouseEvent, QWheelEvent

from app.study.reformat import Plane
from app.study.volume import Window

if TYPE_CHECKING:
    from .slice_view import SliceView

ZOOM_STEP = 1.25


class DragMode:
    PAN = "pan"
    WINDOW = "window"
    ZOOM = "zoom"


class SliceInteractionMixin:
    """The input handlers of :class:`~app.ui.slice_view.SliceView`."""

    def wheelEvent(self: "SliceView", event: QWheelEvent) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(ZOOM_STEP**steps, event.position())
        else:
            self.user_navigated = True
            # Wheel towards the user (negative delta) = next slice, as in most viewers.
            self.scroll(-int(math.copysign(max(1, round(abs(steps))), steps)))
        event.accept()

    def keyPressEvent(self: "SliceView", event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        K = Qt.Key
        if key in (K.Key_PageDown, K.Key_Down, K.Key_Right, K.Key_PageUp, K.Key_Up, K.Key_Left, K.Key_Home, K.Key_End):
            self.user_navigated = True
        if key in (K.Key_PageDown, K.Key_Down, K.Key_Right):
            self.scroll(+1 if key != K.Key_PageDown else max(1, self.slice_count // 10))
        elif key in (K.Key_PageUp, K.Key_Up, K.Key_Left):
            self.scroll(-1 if key != K.Key_PageUp else -max(1, self.slice_count // 10))
        elif key == K.Key_Home:
            self.set_slice(0)
        elif key == K.Key_End:
            self.set_slice(self.slice_count - 1)
        elif key in (K.Key_Plus, K.Key_Equal):
            self.zoom_in()
        elif key == K.Key_Minus:
            self.zoom_out()
        elif key == K.Key_F:
            self.fit()
        elif key == K.Key_R:
            self.reset_window()
        elif key == K.Key_V:
            self.cycle_voi_window()  # next VOI window stored in the file
        elif key == K.Key_O:
            self.toggle_dicom_overlays()
        elif key == K.Key_1:
            self.set_plane(Plane.AXIAL)
        elif key == K.Key_2:
            self.set_plane(Plane.CORONAL)
        elif key == K.Key_3:
            self.set_plane(Plane.SAGITTAL)
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def mousePressEvent(self: "SliceView", event: QMouseEvent) -> None:  # noqa: N802
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if self._volume is None or self._drag_button is not None:
            return
        self._drag_button = event.button()
        self._drag_start = event.position()
        self._drag_window = self._window
        self._drag_pan = QPointF(self._pan)
        self._drag_scale = self.zoom
        mode = self._mode_for(event.button())
        if mode == DragMode.PAN:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif mode == DragMode.WINDOW:
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        elif mode == DragMode.ZOOM:
            self.setCursor(Qt.CursorShape.SizeVerCursor)
        event.accept()

    def _mode_for(self: "SliceView", button: Qt.MouseButton) -> str | None:
        if button == Qt.MouseButton.RightButton:
            return DragMode.WINDOW
        if button == Qt.MouseButton.MiddleButton:
            return DragMode.PAN
        if button == Qt.MouseButton.LeftButton:
            return self.drag_mode
        return None

    def mouseMoveEvent(self: "SliceView", event: QMouseEvent) -> None:  # noqa: N802
        pos = event.position()
        self._last_cursor = pos
        if self._drag_button is not None:
            d = pos - self._drag_start
            mode = self._mode_for(self._drag_button)
            if mode == DragMode.PAN:
                self._pan = self._drag_pan + d
                self._fit = False
                self.update()
            elif mode == DragMode.WINDOW:
                self._drag_window_to(d.x(), d.y())
            elif mode == DragMode.ZOOM:
                self.set_zoom(self._drag_scale * (1.01 ** (-d.y())), self._drag_start)
        self.cursor_moved.emit(self.cursor_info_at(pos))
        event.accept()

    def _drag_window_to(self: "SliceView", dx: float, dy: float) -> None:
        """Right-drag: right widens the window (less contrast), down raises the level
        (darker image). Sensitivity follows the window at drag start, so fine tuning a
        narrow brain window and sweeping a lung window both feel right."""
        w0 = self._drag_window
        step = max(w0.width, 20.0) / 250.0
        self.set_window(Window(w0.center + dy * step, max(1.0, w0.width + dx * step), "custom"))

    def mouseReleaseEvent(self: "SliceView", event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == self._drag_button:
            self._drag_button = None
            self.unsetCursor()
        event.accept()

    def leaveEvent(self: "SliceView", event) -> None:  # noqa: N802
        self._last_cursor = None
        self.cursor_moved.emit(None)
        super().leaveEvent(event)

    def contextMenuEvent(self: "SliceView", event) -> None:  # noqa: N802
        event.accept()  # right button is window/level, never a context menu
