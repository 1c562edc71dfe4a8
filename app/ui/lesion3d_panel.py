"""The 3-D lesion panel: a box propagated through the slices (app.pipeline.segmentation.propagate)
with its figures, a per-slice confidence strip along the slice axis (click: go to that slice),
trim first / last slice, accept and discard. Widgets only: the controller
(:mod:`app.ui.lesion3d_control`) runs the propagation and binds the result."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from app.pipeline.segmentation.propagate import Lesion3D, SliceResult

from .theme import icon

EMPTY_TEXT = ("No 3-D lesion. Turn on \u201c3-D\u201d and draw a box: LiteMedSAM segments it, then follows it "
              "through the neighbouring slices.")


def confidence_colour(c: float) -> QColor:
    """Red (0) -> amber (0.5) -> green (1): the strip's colour for a slice's mask confidence."""
    c = max(0.0, min(1.0, float(c)))
    if c < 0.5:
        return QColor(220, int(60 + 2 * c * 140), 60)
    return QColor(int(220 - (c - 0.5) * 2 * 150), 200, 80)


class ConfidenceStrip(QWidget):
    """One cell per slice of the series; a slice of the lesion is filled with its confidence's
    colour (height = confidence), a slice where propagation stopped is crossed, the current
    slice is outlined. Click a cell: ``slice_clicked(k)``."""

    slice_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.count = 0
        self.cells: dict[int, SliceResult] = {}
        self.current = -1
        self.setMinimumHeight(34)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(240, 34)

    def set_slices(self, count: int, cells: dict[int, SliceResult]) -> None:
        self.count, self.cells = int(count), dict(cells)
        self.update()

    def set_current(self, k: int) -> None:
        self.current = int(k)
        self.update()

    def cell_rect(self, k: int) -> QRectF:
        w = self.width() / max(self.count, 1)
        return QRectF(k * w, 0.0, w, float(self.height()))

    def slice_at(self, x: float) -> int | None:
        if self.count <= 0 or not 0 <= x < self.width():
            return None
        return min(self.count - 1, int(x * self.count / max(self.width(), 1)))

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 30, 36))
        for k, s in self.cells.items():
            r = self.cell_rect(k).adjusted(0.5, 2, -0.5, -2)
            if s.included:
                h = max(2.0, r.height() * max(0.0, min(1.0, s.confidence)))
                p.fillRect(QRectF(r.left(), r.bottom() - h, r.width(), h), confidence_colour(s.confidence))
            else:  # looked at, rejected: a cross
                p.setPen(QPen(QColor(150, 150, 150), 1.0))
                p.drawLine(r.topLeft(), r.bottomRight())
                p.drawLine(r.topRight(), r.bottomLeft())
        if 0 <= self.current < self.count:
            p.setPen(QPen(QColor(255, 255, 255), 1.5))
            p.drawRect(self.cell_rect(self.current).adjusted(0.75, 0.75, -0.75, -0.75))
        p.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        k = self.slice_at(event.position().x())
        if k is not None and event.button() == Qt.MouseButton.LeftButton:
            self.slice_clicked.emit(k)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        k = self.slice_at(event.position().x())
        s = self.cells.get(k) if k is not None else None
        if k is None:
            self.setToolTip("")
        elif s is None:
            self.setToolTip(f"Slice {k + 1}: not part of the lesion")
        else:
            iou = "" if s.iou_pred is None else f", predicted IoU {s.iou_pred:.2f}"
            state = "in the lesion" if s.included else f"stopped: {s.stop_reason.value}"
            self.setToolTip(f"Slice {k + 1}: C {s.confidence:.2f}{iou}, {s.area_px} px ({state})")


class Lesion3DPanel(QWidget):
    slice_clicked = Signal(int)
    trim_first_requested = Signal()
    trim_last_requested = Signal()
    accept_requested = Signal()
    discard_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        self.mode_row = QHBoxLayout()
        lay.addLayout(self.mode_row)  # the controller puts the "3-D" tool button here
        self.summary = QLabel(EMPTY_TEXT)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.summary)
        self.strip = ConfidenceStrip(self)
        self.strip.slice_clicked.connect(self.slice_clicked)
        lay.addWidget(self.strip)
        self.strip_caption = QLabel("")
        self.strip_caption.setStyleSheet("color:#9aa4af; font-size:11px;")
        lay.addWidget(self.strip_caption)
        row = QHBoxLayout()
        self.trim_first_button = QPushButton("Trim first slice")
        self.trim_last_button = QPushButton("Trim last slice")
        self.accept_button = QPushButton(icon("mdi6.check"), "Accept")
        self.discard_button = QPushButton(icon("mdi6.close"), "Discard")
        self.cancel_button = QPushButton("Cancel")
        for b, sig in ((self.trim_first_button, self.trim_first_requested),
                       (self.trim_last_button, self.trim_last_requested),
                       (self.accept_button, self.accept_requested), (self.discard_button, self.discard_requested),
                       (self.cancel_button, self.cancel_requested)):
            b.clicked.connect(sig)
            row.addWidget(b)
        lay.addLayout(row)
        lay.addStretch(1)
        self.lesion: Lesion3D | None = None
        self.accepted = False
        self.show_empty()

    # ----- states ----------------------------------------------------------------------
    def show_empty(self) -> None:
        self.lesion, self.accepted = None, False
        self.summary.setText(EMPTY_TEXT)
        self.strip.set_slices(0, {})
        self.strip_caption.setText("")
        self._buttons(running=False)

    def show_running(self, count: int, seed: int) -> None:
        self.lesion, self.accepted = None, False
        self.summary.setText(f"Propagating the box from slice {seed + 1}\u2026")
        self.strip.set_slices(count, {})
        self.strip_caption.setText("")
        self._buttons(running=True)

    def show_progress(self, s: SliceResult) -> None:
        cells = dict(self.strip.cells)
        cells[s.index] = s
        self.strip.set_slices(self.strip.count, cells)
        state = "in" if s.included else f"stopped: {s.stop_reason.value}"
        self.summary.setText(f"Propagating\u2026 slice {s.index + 1}: C {s.confidence:.2f} ({state})")

    def show_lesion(self, lesion: Lesion3D, count: int, *, accepted: bool = False) -> None:
        self.lesion, self.accepted = lesion, accepted
        self.summary.setText(summary_text(lesion, accepted))
        self.strip.set_slices(count, {s.index: s for s in lesion.per_slice})
        self.strip_caption.setText(f"Slices 1\u2013{count}, left to right: confidence per slice (height, colour); "
                                   "\u00d7 = where it stopped. Click a slice to go there.")
        self._buttons(running=False)

    def show_message(self, text: str) -> None:
        self.summary.setText(text)
        self._buttons(running=False)

    def _buttons(self, running: bool) -> None:
        les = self.lesion
        editable = les is not None and not self.accepted and not running
        self.trim_first_button.setEnabled(editable and les.first < les.seed)
        self.trim_last_button.setEnabled(editable and les.last > les.seed)
        self.accept_button.setEnabled(editable)
        self.discard_button.setEnabled(les is not None and not running)
        self.cancel_button.setVisible(running)


def summary_text(lesion: Lesion3D, accepted: bool) -> str:
    """The panel's figures; mm only from the file's spacing."""
    s = lesion.size
    n = f"slices {lesion.first + 1}\u2013{lesion.last + 1} ({s.extent_slices})"
    if s.calibrated:
        figures = (f"{s.volume_ml:.2f} mL \u00b7 {n}, {s.extent_mm:.1f} mm \u00b7 largest diameter "
                   f"{s.largest_diameter_mm:.1f} mm (slice {s.diameter_slice + 1})")
    else:
        figures = (f"{s.voxels} voxels \u00b7 {n} \u00b7 largest diameter {s.largest_diameter_px:.1f} px "
                   f"(slice {s.diameter_slice + 1}); the file has no spacing, so mm are unknown")
    head = "Accepted 3-D lesion" if accepted else "3-D lesion (not accepted yet)"
    stops = f"stopped by {lesion.stop_reasons[0].value} (first) / {lesion.stop_reasons[1].value} (last)"
    return f"<b>{head}</b>: {figures}<br>{lesion.backend}, drawn on slice {lesion.seed + 1}; {stops}"
