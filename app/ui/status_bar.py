"""Status bar: cursor position (LPS mm, voxel), value, window, zoom, slice, and a
progress bar with Cancel for background tasks."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QToolButton, QWidget

from app.study.volume import Window

from .slice_view import CursorInfo
from .theme import icon


class ViewerStatusBar(QStatusBar):
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.progress.setTextVisible(True)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setIcon(icon("mdi6.close-circle-outline"))
        self.cancel_button.setToolTip("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.position = QLabel("", self)
        self.voxel = QLabel("", self)
        self.value = QLabel("", self)
        self.window_label = QLabel("", self)
        self.zoom = QLabel("", self)
        self.slice = QLabel("", self)
        # Permanent widgets: showMessage() would hide normal ones while a message shows.
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.cancel_button)
        for w in (self.position, self.voxel, self.value, self.window_label, self.zoom, self.slice):
            w.setVisible(False)
            self.addPermanentWidget(w)
        # The message line is one line and elides what does not fit: the whole message is
        # always in the tooltip (the panels that matter show theirs in full).
        self.messageChanged.connect(lambda text: self.setToolTip(text))
        self.position.setToolTip("Cursor position, patient LPS millimetres")
        self.voxel.setToolTip("Voxel index (x, y, z)")

    # ----- readouts -----------------------------------------------------------------
    def set_cursor(self, info: CursorInfo | None) -> None:
        if info is None:
            for w in (self.position, self.voxel, self.value):
                w.setVisible(False)
            return
        i, j, k = info.ijk
        if info.lps is not None:
            x, y, z = info.lps
            self.position.setText(f"LPS ({x:.1f}, {y:.1f}, {z:.1f}) mm")
        self.voxel.setText(f"[{i}, {j}, {k}]")
        self.value.setText(info.value_text())
        for w in (self.voxel, self.value):
            w.setVisible(True)
        self.position.setVisible(info.lps is not None)

    def set_window(self, window: Window | None, rgb: bool = False) -> None:
        if window is None or rgb:
            self.window_label.setVisible(False)
            return
        self.window_label.setText(f"C {window.center:.0f} / W {window.width:.0f}")
        self.window_label.setVisible(True)

    def set_zoom(self, zoom: float | None) -> None:
        self.zoom.setVisible(zoom is not None)
        if zoom is not None:
            self.zoom.setText(f"Zoom {zoom * 100:.0f}%")

    def set_slice(self, index: int | None, count: int = 0) -> None:
        self.slice.setVisible(index is not None)
        if index is not None:
            self.slice.setText(f"Slice {index + 1}/{count}")

    # ----- background task ------------------------------------------------------------
    def begin_task(self, text: str) -> None:
        self.progress.setRange(0, 0)  # busy until the first progress report
        self.progress.setFormat(text)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)

    def task_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.progress.setFormat(f"{message or 'Working'}  %p%")
        else:
            self.progress.setFormat(message or "Working…")

    def end_task(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
