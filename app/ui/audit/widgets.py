"""Small widgets the audit panel's sections share: a collapsible Section, rich labels, the
confidence bar, colour swatches and clickable frames."""
from __future__ import annotations

import html
from typing import Sequence

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

DIM = "#7d8793"
WARN = "#ffd27a"
ERROR = "#ff9a92"
EDITED = "#ffb07a"
# A presentation's severity -> the colour it is shown in.
SEVERITY = {"ok": "#7fd6a0", "warn": WARN, "error": ERROR, "neutral": "#9aa4af"}


def rgb_hex(c: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c[:3])


def esc(text: str) -> str:
    return html.escape(text)


def span(text: str, color: str) -> str:
    """``text`` (already escaped) in ``color``."""
    return f"<span style='color:{color}'>{text}</span>"


def numpy_to_pixmap(image: np.ndarray) -> QPixmap:
    img = np.ascontiguousarray(image)
    if img.ndim == 2:
        img = np.ascontiguousarray(np.repeat((img > 0).astype(np.uint8)[:, :, None] * 255, 3, axis=2)
                                   if img.dtype == bool else np.repeat(img[:, :, None], 3, axis=2))
    h, w = img.shape[:2]
    q = QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(q)


def color_icon(color: Sequence[int]) -> QIcon:
    pm = QPixmap(12, 12)
    pm.fill(QColor(*color[:3]))
    return QIcon(pm)


def label(text: str, *, rich: bool = False, color: str | None = None, selectable: bool = True,
          wrap: bool = True) -> QLabel:
    lab = QLabel(text if rich else html.escape(text))
    lab.setTextFormat(Qt.TextFormat.RichText)
    lab.setWordWrap(wrap)
    if selectable:
        lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if color:
        lab.setStyleSheet(f"color:{color};")
    return lab


class TitleButton(QToolButton):
    """A section's toggle whose title is elided to the panel's width (the full title in the
    tooltip): an answer's title must never widen the panel past its dock, where the
    sideways-clipped rest would be unreadable."""

    ARROW_PX = 26  # the arrow icon and the padding beside the text

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def _elide(self) -> None:
        avail = max(self.width() - self.ARROW_PX, 40)
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, avail))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(80, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, super().sizeHint().height())


class Section(QWidget):
    """A titled, collapsible block."""

    def __init__(self, title: str, parent: QWidget | None = None, *, expanded: bool = True) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 2)
        lay.setSpacing(2)
        self.header = TitleButton(self)
        self.header.set_full_text(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.setStyleSheet("QToolButton{border:none; font-weight:600; color:#e3e8ee; text-align:left;"
                                  "padding:3px 0px;}")
        self.header.toggled.connect(self.set_expanded)
        lay.addWidget(self.header)
        self.body = QWidget(self)
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(14, 0, 0, 4)
        self.body_layout.setSpacing(4)
        lay.addWidget(self.body)
        self.body.setVisible(expanded)

    def set_title(self, title: str) -> None:
        self.header.set_full_text(title)

    def set_expanded(self, on: bool) -> None:
        self.header.blockSignals(True)
        self.header.setChecked(on)
        self.header.blockSignals(False)
        self.header.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    @property
    def expanded(self) -> bool:
        return self.body.isVisible() or self.header.isChecked()

    def add(self, w: QWidget) -> QWidget:
        self.body_layout.addWidget(w)
        return w

    def clear(self) -> None:
        while self.body_layout.count():
            item = self.body_layout.takeAt(0)
            w = item.widget()
            if w is not None:
                w.setParent(None)
                w.deleteLater()


class ConfidenceBar(QWidget):
    """C in [0, 1] as a bar, with a tick at tau; green when accepted, grey when not."""

    def __init__(self, confidence: float, tau: float, accepted: bool, tip: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confidence, self.tau, self.accepted = float(confidence), float(tau), bool(accepted)
        self.setMinimumWidth(90)
        self.setFixedHeight(16)
        self.setToolTip(tip)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(150, 16)

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        text_w = 44
        r = QRectF(0, 4, max(10, self.width() - text_w - 4), 8)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#2a3038"))
        p.drawRoundedRect(r, 3, 3)
        fill = QRectF(r.x(), r.y(), r.width() * min(max(self.confidence, 0.0), 1.0), r.height())
        p.setBrush(QColor("#3fae6a") if self.accepted else QColor("#6b7480"))
        p.drawRoundedRect(fill, 3, 3)
        x = r.x() + r.width() * self.tau
        p.setPen(QPen(QColor(WARN), 1.5))
        p.drawLine(int(x), 1, int(x), 15)
        p.setPen(QColor("#e3e8ee") if self.accepted else QColor(DIM))
        p.drawText(QRectF(self.width() - text_w, 0, text_w, 16),
                   int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), f"{self.confidence:.2f}")
        p.end()


class Swatch(QLabel):
    def __init__(self, color: Sequence[int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(14, 14)
        self.setStyleSheet(f"background:{rgb_hex(color)}; border:1px solid #11151a; border-radius:2px;")


class ClickableFrame(QFrame):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)
