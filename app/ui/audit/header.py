"""The panel's header: the run's status line, the answer (prominently), the disclaimer and
the clinician's actions (draw a box, re-ask with edited evidence, export the report)."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.audit.present import DISCLAIMER, RunPresentation, breakable

from ..theme import icon
from .widgets import EDITED, SEVERITY, WARN, esc, label, span

EMPTY_TEXT = "No run yet. Ask a question in the Ask panel."


class AnswerHeader(QFrame):
    draw_box_toggled = Signal(bool)
    reask_requested = Signal()
    export_requested = Signal()
    dicom_export_requested = Signal()  # write the run as DICOM SEG / SR / PDF into a folder
    pacs_send_requested = Signal()  # store those objects on a PACS node

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AnswerHeader")
        self.setStyleSheet("#AnswerHeader{background:#1a2630; border-bottom:1px solid #2d4a63;}")
        hl = QVBoxLayout(self)
        hl.setContentsMargins(10, 8, 10, 8)
        hl.setSpacing(4)
        self.status_label = QLabel("")
        self.status_label.setStyleSheet("color:#9aa4af; font-size:11px;")
        # One line of status, time, slice, profile, mode and run: it wraps at the " · " breaks
        # instead of widening the Audit dock (and the whole right-hand column) after every run.
        self.status_label.setWordWrap(True)
        hl.addWidget(self.status_label)
        self.answer_label = label(EMPTY_TEXT)
        f = QFont(self.answer_label.font())
        f.setPointSizeF(f.pointSizeF() * 1.35)
        f.setBold(True)
        self.answer_label.setFont(f)
        self.answer_label.setStyleSheet("color:#f2f5f8;")
        hl.addWidget(self.answer_label)
        self.disclaimer = label(DISCLAIMER, color=WARN)
        self.disclaimer.setStyleSheet(f"color:{WARN}; font-size:11px;")
        hl.addWidget(self.disclaimer)
        brow = QHBoxLayout()
        brow.setSpacing(4)
        self.draw_button = QPushButton(icon("mdi6.vector-rectangle"), "Draw box")
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip("Left-drag a rectangle on the slice around a structure; LiteMedSAM segments it")
        self.draw_button.toggled.connect(self.draw_box_toggled)
        self.reask_button = QPushButton(icon("mdi6.refresh"), "Re-ask with edited evidence")
        self.reask_button.setToolTip("Ask the same question again on this slice, without the discarded masks and "
                                     "with the boxes you drew (a new run linked to this one)")
        self.reask_button.clicked.connect(self.reask_requested)
        self.export_button = QPushButton(icon("mdi6.file-pdf-box"), "Report\u2026")
        self.export_button.setToolTip("Export the evidence report (PDF)")
        self.export_button.clicked.connect(self.export_requested)
        self.dicom_button = QPushButton(icon("mdi6.folder-download-outline"), "Export DICOM\u2026")
        self.dicom_button.setToolTip("Write the run as DICOM SEG, structured report and encapsulated PDF into a folder")
        self.dicom_button.clicked.connect(self.dicom_export_requested)
        self.pacs_button = QPushButton(icon("mdi6.cloud-upload-outline"), "Send to PACS\u2026")
        self.pacs_button.setToolTip("Store the run's DICOM SEG, structured report and PDF on a PACS node, in the source study")
        self.pacs_button.clicked.connect(self.pacs_send_requested)
        brow.addWidget(self.draw_button)
        brow.addWidget(self.reask_button, 1)
        brow.addWidget(self.export_button)
        hl.addLayout(brow)
        drow = QHBoxLayout()
        drow.setSpacing(4)
        drow.addStretch(1)
        drow.addWidget(self.dicom_button)
        drow.addWidget(self.pacs_button)
        hl.addLayout(drow)
        self.edits_label = label("", color=EDITED)
        self.edits_label.hide()
        hl.addWidget(self.edits_label)

    def show_empty(self) -> None:
        self.status_label.setText("")
        self.answer_label.setText(EMPTY_TEXT)

    def show_run(self, p: RunPresentation, note: str = "") -> None:
        h = p.header
        meta = (f"<span style='color:{SEVERITY[h.severity]}; font-weight:600'>{h.status_label}</span> \u00b7 "
                f"{h.created} \u00b7 {h.slice_text} \u00b7 {esc(h.profile)} \u00b7 {h.mode_label}"
                f" \u00b7 run {h.run_short}")
        if h.status_reason:  # e.g. the CARE-Flow fallback of a failed coordinator: why, in amber
            meta += f"<br>{span(esc(h.status_reason), SEVERITY[h.severity])}"
        if note:
            meta += f"<br>{span(esc(note), EDITED)}"
        self.status_label.setText(meta)
        if h.answer:
            # A runaway generation must not push the evidence off screen: the full text is
            # in the tooltip and in the Answers section.
            ans = esc(breakable(h.answer_short))
            self.answer_label.setToolTip(h.answer if h.answer_short != h.answer else "")
        else:
            ans = span(h.answer_missing, SEVERITY[h.answer_missing_severity])
        scope = f"<br><span style='font-size:11px; font-weight:400; color:#9aa4af'>{esc(h.scope)}</span>"
        self.answer_label.setText(f"<span style='font-size:11px; font-weight:400; color:#9aa4af'>Q: "
                                  f"{esc(h.question)}</span><br>{ans}{scope if h.scope else ''}")

    def set_edits(self, text: str) -> None:
        self.edits_label.setText(text)
        self.edits_label.setVisible(bool(text))
