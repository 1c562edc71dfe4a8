"""The masks section: one row per mask (toggle, colour, confidence against tau, opacity,
Discard/Restore); the state itself is the view model's :class:`MaskEntry`."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QPushButton, QSizePolicy, QSlider, QWidget

from app.audit.audit_view_model import MaskEntry, mask_state
from app.audit.present import mask_row

from .widgets import DIM, EDITED, ClickableFrame, ConfidenceBar, Swatch

_TONE = {"discarded": EDITED, "accepted": "#7fd6a0", "below": DIM}


class MaskRow(ClickableFrame):
    visibility_changed = Signal(bool)
    opacity_changed = Signal(float)
    discard_toggled = Signal(bool)

    def __init__(self, entry: MaskEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = entry
        p = mask_row(entry.index or 0, entry.mask)
        self.setObjectName("MaskRow")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to show this mask on the image")
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 3, 4, 3)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.visible_box = QCheckBox(self)
        self.visible_box.setToolTip("Show this mask on the image")
        self.visible_box.toggled.connect(self.visibility_changed)
        grid.addWidget(self.visible_box, 0, 0)
        grid.addWidget(Swatch(entry.color), 0, 1)
        # Long names are elided so the row's controls stay on screen; the tooltip has it all.
        self.name = QLabel(p.short_name)
        self.name.setToolTip(p.entity)
        self.name.setMinimumWidth(40)
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        grid.addWidget(self.name, 0, 2)
        self.state = QLabel()
        grid.addWidget(self.state, 0, 3)
        self.discard = QPushButton("Discard", self)
        self.discard.setCheckable(True)
        self.discard.setToolTip("Exclude this mask from the evidence when you re-ask (recorded as an override)")
        self.discard.toggled.connect(self._on_discard)
        grid.addWidget(self.discard, 0, 4)
        self.route = QLabel(p.route)
        self.route.setStyleSheet(f"color:{DIM}; font-size:11px;")
        self.route.setWordWrap(True)  # wraps rather than widening the panel past its dock
        grid.addWidget(self.route, 1, 2)
        self.bar = ConfidenceBar(p.confidence, p.tau, p.accepted, p.confidence_tip)
        self.bar.setMinimumWidth(90)
        grid.addWidget(self.bar, 1, 3)
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(5, 100)
        self.opacity.setValue(40)
        self.opacity.setFixedWidth(70)
        self.opacity.setToolTip("Overlay opacity")
        self.opacity.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))
        grid.addWidget(self.opacity, 1, 4)
        grid.setColumnStretch(2, 1)
        self.visible_box.blockSignals(True)
        self.visible_box.setChecked(entry.shown_by_default)
        self.visible_box.blockSignals(False)
        self.discard.blockSignals(True)
        self.discard.setChecked(entry.discarded)
        self.discard.blockSignals(False)
        self._restyle()

    def _on_discard(self, on: bool) -> None:
        self.entry.discarded = on
        self._restyle()
        self.discard_toggled.emit(on)

    def _restyle(self) -> None:
        m, e = self.entry.mask, self.entry
        f = QFont(self.name.font())
        grey = e.discarded or not m.accepted
        f.setStrikeOut(grey)
        self.name.setFont(f)
        self.name.setStyleSheet(f"color:{DIM};" if grey else "color:#e3e8ee; font-weight:600;")
        text, tone = mask_state(e)
        self.state.setText(text)
        self.state.setStyleSheet(f"color:{_TONE[tone]}; font-size:11px;")
        self.discard.setText("Restore" if e.discarded else "Discard")
        self.setStyleSheet("#MaskRow{background:#1e2329; border-radius:4px;}" if not grey
                           else "#MaskRow{background:#191d22; border-radius:4px;}")
