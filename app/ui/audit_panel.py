"""The audit panel: everything one CARE run did, readable by the radiologist who asked.

Top: the final answer, prominently, with "decision support only". Then, in collapsible
sections: (1) the proposed entities and what merged into what; (2) every mask as a coloured
overlay on the viewer with its confidence against tau (rejected masks greyed, struck through
and hidden by default, each toggleable, with an opacity slider and a Discard button); (3) the
evidence the VQA model saw (the zoom-in crop drawn on the slice, the mask image); (4) each
evidence pass's reasoning and answer and the vote table; (5) the coordinator timeline;
(6) provenance: models, revisions, device, timings, warnings; (7) the clinician overrides.

The panel draws its overlays on the viewer itself (layers named ``care:*``) and emits the
clinician's edits as signals; the controller records them in the audit store.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.pipeline.record import MaskRecord, RunRecord
from app.pipeline.types import EvidenceType
from app.study.reformat import native_plane

from .theme import icon

LAYER_PREFIX = "care:"
DISCLAIMER = ("Decision support only \u2014 not a diagnosis. Check the answer against the images and the "
              "evidence below before acting on it.")
EVIDENCE_TITLES = {
    EvidenceType.CROP: "Zoom-in crop",
    EvidenceType.MASK: "Binary mask (second image input)",
    EvidenceType.GLOBAL: "Global image",
}
DRAWN_COLOUR = (255, 255, 255)
ANSWER_CHARS = 180
NAME_CHARS = 28  # longer answers are elided in the header
DIM = "#7d8793"


def mask_colour(index: int) -> tuple[int, int, int]:
    """The report's palette, so a mask has the same colour on screen and in the PDF
    (imported on use: the report module pulls in OpenCV, which start-up must not load)."""
    from app.audit.report.composite import mask_colour as report_colour

    return report_colour(index)


def crop_colour() -> tuple[int, int, int]:
    from app.audit.report.composite import CROP_COLOUR

    return CROP_COLOUR


def breakable(text: str, every: int = 24) -> str:
    """Zero-width spaces inside very long tokens so a label can wrap them: model output
    (and a runaway generation in particular) must never widen the panel off screen."""
    return re.sub(r"\S{%d,}" % (every + 1),
                  lambda m: "\u200b".join(m.group(0)[i:i + every] for i in range(0, len(m.group(0)), every)), text)


def elide(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "\u2026"


def _rgb_hex(c: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c[:3])


def numpy_to_pixmap(image: np.ndarray) -> QPixmap:
    img = np.ascontiguousarray(image)
    if img.ndim == 2:
        img = np.ascontiguousarray(np.repeat((img > 0).astype(np.uint8)[:, :, None] * 255, 3, axis=2)
                                   if img.dtype == bool else np.repeat(img[:, :, None], 3, axis=2))
    h, w = img.shape[:2]
    q = QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(q)


def _fmt_time(iso: str) -> str:
    from app.audit.report.document import fmt_time

    try:
        return fmt_time(iso)
    except Exception:  # noqa: BLE001 - a malformed time is shown as stored
        return iso


# ----------------------------------------------------------------------------------------
# Small widgets
# ----------------------------------------------------------------------------------------
class Section(QWidget):
    """A titled, collapsible block."""

    def __init__(self, title: str, parent: QWidget | None = None, *, expanded: bool = True) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 2, 0, 2)
        lay.setSpacing(2)
        self.header = QToolButton(self)
        self.header.setText(title)
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
        self.header.setText(title)

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


def _label(text: str, *, rich: bool = False, color: str | None = None, selectable: bool = True,
           wrap: bool = True) -> QLabel:
    lab = QLabel(text if rich else html.escape(text))
    lab.setTextFormat(Qt.TextFormat.RichText)
    lab.setWordWrap(wrap)
    if selectable:
        lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if color:
        lab.setStyleSheet(f"color:{color};")
    return lab


class ConfidenceBar(QWidget):
    """C in [0, 1] as a bar, with a tick at tau; green when accepted, grey when not."""

    def __init__(self, confidence: float, tau: float, accepted: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.confidence, self.tau, self.accepted = float(confidence), float(tau), bool(accepted)
        self.setMinimumWidth(90)
        self.setFixedHeight(16)
        self.setToolTip(f"Confidence C = 1 \u2212 H / log 2 = {self.confidence:.3f}; threshold \u03c4 = {self.tau:.2f}")

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
        p.setPen(QPen(QColor("#ffd27a"), 1.5))
        p.drawLine(int(x), 1, int(x), 15)
        p.setPen(QColor("#e3e8ee") if self.accepted else QColor(DIM))
        p.drawText(QRectF(self.width() - text_w, 0, text_w, 16),
                   int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), f"{self.confidence:.2f}")
        p.end()


class Swatch(QLabel):
    def __init__(self, color: Sequence[int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(14, 14)
        self.setStyleSheet(f"background:{_rgb_hex(color)}; border:1px solid #11151a; border-radius:2px;")


class ClickableFrame(QFrame):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
        super().mousePressEvent(event)


# ----------------------------------------------------------------------------------------
# Masks
# ----------------------------------------------------------------------------------------
@dataclass
class MaskEntry:
    """One mask shown in the panel: from the run, or drawn by the clinician since."""

    key: str  # overlay layer name
    mask: MaskRecord
    index: int | None  # index into record.masks; None for a box drawn after the run
    color: tuple[int, int, int]
    slice_index: int
    discarded: bool = False  # by the clinician (override)
    drawn_box: tuple[int, int, int, int] | None = None

    @property
    def shown_by_default(self) -> bool:
        return self.mask.accepted and not self.discarded


class MaskRow(ClickableFrame):
    visibility_changed = Signal(bool)
    opacity_changed = Signal(float)
    discard_toggled = Signal(bool)

    def __init__(self, entry: MaskEntry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry = entry
        m = entry.mask
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
        short = m.entity if len(m.entity) <= NAME_CHARS else m.entity[: NAME_CHARS - 1] + "\u2026"
        self.name = QLabel(short)
        self.name.setToolTip(m.entity)
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
        route = f"{m.backend} \u00b7 {m.prompt_type} prompt" + (f" \u00b7 {m.area_px} px" if m.area_px else "")
        self.route = QLabel(route)
        self.route.setStyleSheet(f"color:{DIM}; font-size:11px;")
        grid.addWidget(self.route, 1, 2)
        self.bar = ConfidenceBar(m.confidence, m.tau, m.accepted)
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
        if e.discarded:
            text, color = "discarded by you", "#ffb07a"
        elif m.accepted:
            text, color = f"accepted (\u2265 \u03c4 {m.tau:.2f})", "#7fd6a0"
        else:
            text, color = f"below \u03c4 {m.tau:.2f}", DIM
        if e.index is None:
            text += " \u00b7 new box"
        self.state.setText(text)
        self.state.setStyleSheet(f"color:{color}; font-size:11px;")
        self.discard.setText("Restore" if e.discarded else "Discard")
        self.setStyleSheet("#MaskRow{background:#1e2329; border-radius:4px;}" if not grey
                           else "#MaskRow{background:#191d22; border-radius:4px;}")


# ----------------------------------------------------------------------------------------
# The panel
# ----------------------------------------------------------------------------------------
@dataclass
class PanelState:
    record: RunRecord | None = None
    overrides: list[Any] = field(default_factory=list)
    on_view: bool = False  # the run's series is the one displayed (overlays drawn)


class AuditPanel(QWidget):
    discard_toggled = Signal(object, bool)  # MaskEntry, discarded
    reask_requested = Signal()
    export_requested = Signal()
    draw_box_toggled = Signal(bool)

    def __init__(self, view, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuditPanel")
        self.view = view
        self.state = PanelState()
        self.entries: list[MaskEntry] = []
        self.mask_rows: list[MaskRow] = []
        self._flash_timers: list[QTimer] = []

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        # ---- header: the answer ----
        self.header = QFrame(self)
        self.header.setObjectName("AnswerHeader")
        self.header.setStyleSheet("#AnswerHeader{background:#1a2630; border-bottom:1px solid #2d4a63;}")
        hl = QVBoxLayout(self.header)
        hl.setContentsMargins(10, 8, 10, 8)
        hl.setSpacing(4)
        self.status_label = QLabel("")
        self.status_label.setStyleSheet("color:#9aa4af; font-size:11px;")
        hl.addWidget(self.status_label)
        self.answer_label = _label("No run yet. Ask a question in the Ask panel.")
        f = QFont(self.answer_label.font())
        f.setPointSizeF(f.pointSizeF() * 1.35)
        f.setBold(True)
        self.answer_label.setFont(f)
        self.answer_label.setStyleSheet("color:#f2f5f8;")
        hl.addWidget(self.answer_label)
        self.disclaimer = _label(DISCLAIMER, color="#ffd27a")
        self.disclaimer.setStyleSheet("color:#ffd27a; font-size:11px;")
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
        brow.addWidget(self.draw_button)
        brow.addWidget(self.reask_button, 1)
        brow.addWidget(self.export_button)
        hl.addLayout(brow)
        self.edits_label = _label("", color="#ffb07a")
        self.edits_label.hide()
        hl.addWidget(self.edits_label)
        outer.addWidget(self.header)

        # ---- sections ----
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.body_layout = QVBoxLayout(body)
        self.body_layout.setContentsMargins(8, 6, 8, 8)
        self.body_layout.setSpacing(4)
        self.sec_entities = Section("Entities")
        self.sec_masks = Section("Masks")
        self.sec_evidence = Section("Evidence")
        self.sec_answers = Section("Answers and vote")
        self.sec_coord = Section("Coordinator", expanded=False)
        self.sec_prov = Section("Provenance", expanded=False)
        self.sec_overrides = Section("Clinician overrides")
        for s in (self.sec_entities, self.sec_masks, self.sec_evidence, self.sec_answers, self.sec_coord,
                  self.sec_prov, self.sec_overrides):
            self.body_layout.addWidget(s)
        self.body_layout.addStretch(1)
        self.scroll.setWidget(body)
        outer.addWidget(self.scroll, 1)
        self.entity_list: QListWidget | None = None
        self.vote_table: QTableWidget | None = None
        self.evidence_frames: list[ClickableFrame] = []
        self.answer_sections: list[Section] = []
        self.show_record(None)

    # ===================================================================== public ==
    @property
    def record(self) -> RunRecord | None:
        return self.state.record

    def show_record(self, record: RunRecord | None, overrides: Sequence[Any] = (), *, on_view: bool = True,
                    note: str = "") -> None:
        """Show ``record`` (None: empty state). ``on_view``: the record's slice belongs to the
        displayed series, so masks and the crop box are drawn on the viewer."""
        self.clear_overlays()
        self.state = PanelState(record, list(overrides), on_view and record is not None)
        self.entries = []
        has = record is not None
        self.reask_button.setEnabled(has and record.status in ("completed", "cancelled", "failed"))
        self.export_button.setEnabled(has)
        for s in (self.sec_entities, self.sec_masks, self.sec_evidence, self.sec_answers, self.sec_coord,
                  self.sec_prov, self.sec_overrides):
            s.clear()
            s.setVisible(has)
        if record is None:
            self.status_label.setText("")
            self.answer_label.setText("No run yet. Ask a question in the Ask panel.")
            self.mask_rows = []
            self._update_edits()
            return
        self._fill_header(record, note)
        self._fill_entities(record)
        k = record.input.slice_index
        self.entries = [
            MaskEntry(f"{LAYER_PREFIX}mask:{i}", m, i, mask_colour(i), k) for i, m in enumerate(record.masks)
        ]
        self._apply_discard_overrides()
        self._fill_masks()
        self._fill_evidence(record)
        self._fill_answers(record)
        self._fill_coordinator(record)
        self._fill_provenance(record)
        self._fill_overrides()
        self._draw_overlays()
        self._update_edits()

    def set_overrides(self, overrides: Sequence[Any]) -> None:
        self.state.overrides = list(overrides)
        self.sec_overrides.clear()
        self._fill_overrides()

    def add_drawn_mask(self, mask: MaskRecord, slice_index: int, box: tuple[int, int, int, int]) -> MaskEntry:
        """A box the clinician drew since the run, segmented: a new row and overlay."""
        n = sum(1 for e in self.entries if e.index is None)
        used = {e.color for e in self.entries}
        color = next((mask_colour(i) for i in range(len(self.entries), len(self.entries) + 10)
                      if mask_colour(i) not in used), mask_colour(len(self.entries)))
        entry = MaskEntry(f"{LAYER_PREFIX}drawn:{n}", mask, None, color, slice_index, drawn_box=box)
        self.entries.append(entry)
        self._add_mask_row(entry)
        self._add_mask_overlay(entry)
        self._update_masks_title()
        self._update_edits()
        self.sec_masks.setVisible(True)
        self.sec_masks.set_expanded(True)
        return entry

    def edited_evidence(self) -> tuple[list[tuple[int, int, int, int]], set[str]]:
        """(boxes, discarded entity names) for a re-ask: the run's clinician boxes and the new
        ones, minus what the clinician discarded."""
        rec = self.state.record
        boxes: list[tuple[int, int, int, int]] = []
        discarded: set[str] = set()
        if rec is not None:
            dropped = {e.mask.entity for e in self.entries if e.discarded and e.index is not None}
            for ent in rec.entities.final:
                if ent.source == "clinician" and ent.box is not None and ent.name not in dropped:
                    boxes.append(tuple(ent.box))
            discarded = {n for n in dropped if not n.startswith("clinician region")}
            discarded |= set(rec.entities.discarded)
        boxes += [e.drawn_box for e in self.entries if e.index is None and not e.discarded and e.drawn_box]
        return boxes, discarded

    def has_edits(self) -> bool:
        return any(e.discarded for e in self.entries) or any(e.index is None for e in self.entries)

    def set_draw_active(self, on: bool) -> None:
        self.draw_button.blockSignals(True)
        self.draw_button.setChecked(on)
        self.draw_button.blockSignals(False)

    def clear_overlays(self) -> None:
        ov = self.view.overlays
        for name in [n for n in ov.names() if n.startswith(LAYER_PREFIX) and n != f"{LAYER_PREFIX}drawing"]:
            ov.remove(name)

    def entry(self, key: str) -> MaskEntry:
        return next(e for e in self.entries if e.key == key)

    # ===================================================================== header ==
    def _fill_header(self, r: RunRecord, note: str) -> None:
        status = {"completed": ("#7fd6a0", "Answered"), "cancelled": ("#ffd27a", "Cancelled"),
                  "failed": ("#ff9a92", "Failed")}.get(r.status, ("#9aa4af", r.status.capitalize()))
        inp = r.input
        mode = "CARE-Coord" if r.mode == "coord" else "CARE-Flow"
        meta = (f"<span style='color:{status[0]}; font-weight:600'>{status[1]}</span> \u00b7 {_fmt_time(r.created)}"
                f" \u00b7 slice {inp.slice_index + 1}/{inp.num_slices} \u00b7 {html.escape(r.profile)} \u00b7 {mode}"
                f" \u00b7 run {r.run_id[:8]}")
        if note:
            meta += f"<br><span style='color:#ffb07a'>{html.escape(note)}</span>"
        self.status_label.setText(meta)
        q = html.escape(r.question)
        if r.final_answer:
            full = " ".join(r.final_answer.split())
            # A runaway generation must not push the evidence off screen: the full text is
            # in the tooltip and in the Answers section.
            short = full if len(full) <= ANSWER_CHARS else full[: ANSWER_CHARS - 1].rstrip() + "\u2026"
            ans = html.escape(breakable(short))
            self.answer_label.setToolTip(full if short != full else "")
        elif r.status == "completed":
            ans = "<span style='color:#9aa4af'>(no usable answer: every evidence pass broke the answer format)</span>"
        elif r.status == "cancelled":
            ans = "<span style='color:#ffd27a'>(cancelled before an answer)</span>"
        else:
            ans = "<span style='color:#ff9a92'>(no answer: the run failed)</span>"
        self.answer_label.setText(f"<span style='font-size:11px; font-weight:400; color:#9aa4af'>Q: {q}</span><br>{ans}")

    # =================================================================== entities ==
    def _fill_entities(self, r: RunRecord) -> None:
        st = r.entities
        lst = QListWidget()
        lst.setObjectName("EntityList")
        lst.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        lst.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        masks_by_name = {m.entity: i for i, m in enumerate(r.masks)}
        for ent in st.final:
            text = elide(ent.name, 40) + ("  (your box)" if ent.source == "clinician" else "")
            if ent.box is not None:
                text += f"   [{ent.box[0]},{ent.box[1]} \u2013 {ent.box[2]},{ent.box[3]}]"
            it = QListWidgetItem(text)
            it.setToolTip(ent.name)
            i = masks_by_name.get(ent.name)
            if i is not None:
                it.setIcon(_color_icon(mask_colour(i)))
                it.setData(Qt.ItemDataRole.UserRole, f"{LAYER_PREFIX}mask:{i}")
                it.setToolTip("Click to show its mask")
            lst.addItem(it)
        for m in st.merges:
            for name, cos in zip(m.merged, m.similarity):
                it = QListWidgetItem(f"\u21b3 \u201c{name}\u201d merged into \u201c{m.kept}\u201d (cosine {cos:.2f})")
                it.setForeground(QColor(DIM))
                lst.addItem(it)
        for name in st.discarded:
            it = QListWidgetItem(f"\u2715 {name}  (discarded by the clinician before segmentation)")
            it.setForeground(QColor("#ffb07a"))
            lst.addItem(it)
        if lst.count() == 0:
            it = QListWidgetItem("No entity was proposed: the answer rests on the global image")
            it.setForeground(QColor(DIM))
            lst.addItem(it)
        lst.setFixedHeight(min(10, lst.count()) * (lst.sizeHintForRow(0) + 2) + 6)
        lst.itemClicked.connect(lambda it: self.highlight(it.data(Qt.ItemDataRole.UserRole)))
        self.entity_list = lst
        self.sec_entities.add(lst)
        proposed = ", ".join(e.name for e in st.proposed) or "(none)"
        extra = f"Proposed by the entity model: {html.escape(breakable(elide(proposed, 300)))}"
        if st.format_violations:
            extra += f"<br>Format problems: {html.escape(breakable('; '.join(st.format_violations)))}"
        self.sec_entities.add(_label(extra, rich=True, color=DIM))
        self.sec_entities.set_title(f"Entities ({len(st.final)})")

    # ====================================================================== masks ==
    def _apply_discard_overrides(self) -> None:
        """Discards recorded earlier (a reopened run) show as discarded."""
        state: dict[str, bool] = {}
        for o in self.state.overrides:
            kind = getattr(o, "kind", "")
            target = str(getattr(o, "detail", {}).get("target", ""))
            if kind in ("mask_discard", "mask_restore"):
                state[target] = kind == "mask_discard"
        for e in self.entries:
            if e.index is not None and state.get(f"masks[{e.index}]"):
                e.discarded = True

    def _fill_masks(self) -> None:
        self.mask_rows = []
        r = self.state.record
        assert r is not None
        if not self.entries:
            self.sec_masks.add(_label("No masks: no entity reached segmentation.", color=DIM))
        for e in self.entries:
            self._add_mask_row(e)
        self.sec_masks.add(_label(
            f"Confidence C = 1 \u2212 H/log 2 (mean over the mask); masks below \u03c4 = {r.tau:.2f} are not used as "
            "evidence (greyed, hidden on the image unless ticked).", color=DIM))
        self._update_masks_title()

    def _update_masks_title(self) -> None:
        n_acc = sum(1 for e in self.entries if e.mask.accepted and not e.discarded)
        self.sec_masks.set_title(f"Masks ({n_acc} of {len(self.entries)} used)")

    def _add_mask_row(self, e: MaskEntry) -> None:
        row = MaskRow(e)
        row.visibility_changed.connect(lambda on, key=e.key: self._set_layer_visible(key, on))
        row.opacity_changed.connect(lambda a, key=e.key: self._set_layer_opacity(key, a))
        row.discard_toggled.connect(lambda on, ent=e: self._on_discard(ent, on))
        row.clicked.connect(lambda key=e.key: self.highlight(key))
        self.mask_rows.append(row)
        # Rows go above the explanatory note (the last widget) once it exists.
        idx = len(self.mask_rows) - 1
        self.sec_masks.body_layout.insertWidget(idx, row)

    def row(self, key: str) -> MaskRow:
        return next(r for r in self.mask_rows if r.entry.key == key)

    def _on_discard(self, e: MaskEntry, on: bool) -> None:
        ov = self.view.overlays
        if e.key in ov:
            ov.set_visible(e.key, not on and e.mask.accepted or (not on and e.index is None))
        self.row(e.key).visible_box.blockSignals(True)
        self.row(e.key).visible_box.setChecked(e.key in ov and ov.get(e.key).visible)
        self.row(e.key).visible_box.blockSignals(False)
        self._update_masks_title()
        self._update_edits()
        self.discard_toggled.emit(e, on)

    def _update_edits(self) -> None:
        n_disc = sum(1 for e in self.entries if e.discarded)
        n_new = sum(1 for e in self.entries if e.index is None and not e.discarded)
        parts = []
        if n_disc:
            parts.append(f"{n_disc} mask{'s' if n_disc > 1 else ''} discarded")
        if n_new:
            parts.append(f"{n_new} new box{'es' if n_new > 1 else ''}")
        self.edits_label.setText("Edited evidence: " + ", ".join(parts) + " \u2014 re-ask to use it" if parts else "")
        self.edits_label.setVisible(bool(parts))

    # =================================================================== overlays ==
    def _usable_view(self) -> bool:
        v = self.view.volume
        r = self.state.record
        return (self.state.on_view and v is not None and r is not None
                and (not r.input.series_uid or v.series_uid == r.input.series_uid)
                and 0 <= r.input.slice_index < v.num_slices)

    def _draw_overlays(self) -> None:
        if not self._usable_view():
            return
        for e in self.entries:
            self._add_mask_overlay(e)
        r = self.state.record
        for i, item in enumerate(r.evidence):
            if item.type == EvidenceType.CROP and item.crop_rect and not item.fallback:
                self.view.overlays.add_box(f"{LAYER_PREFIX}crop:{i}", r.input.slice_index, tuple(item.crop_rect),
                                           crop_colour(), line_width=1.5, label="zoom-in crop")

    def _add_mask_overlay(self, e: MaskEntry) -> None:
        if e.mask.mask is None or self.view.volume is None:
            return
        v = self.view.volume
        if e.mask.mask.shape != v.slice(e.slice_index).shape[:2]:
            return
        if e.key in self.view.overlays:
            self.view.overlays.remove(e.key)
        row = next((r for r in self.mask_rows if r.entry is e), None)
        visible = row.visible_box.isChecked() if row is not None else e.shown_by_default
        opacity = row.opacity.value() / 100.0 if row is not None else 0.4
        self.view.overlays.add(e.key, np.asarray(e.mask.mask, bool), e.color, opacity, visible,
                               slice_index=e.slice_index)

    def _set_layer_visible(self, key: str, on: bool) -> None:
        if key in self.view.overlays:
            self.view.overlays.set_visible(key, on)

    def _set_layer_opacity(self, key: str, a: float) -> None:
        if key in self.view.overlays:
            self.view.overlays.set_opacity(key, a)

    def highlight(self, key: str | None) -> None:
        """Show a layer: go to its slice on the acquisition plane, outline it and flash it."""
        if not key or key not in self.view.overlays or self.view.volume is None:
            return
        layer = self.view.overlays.get(key)
        v = self.view.volume
        self.view.set_plane(native_plane(v))
        k = getattr(layer, "slice_index", None)
        if k is not None:
            self.view.set_slice(k)
        ov = self.view.overlays
        was_visible, was_opacity = layer.visible, layer.opacity
        is_mask = hasattr(layer, "outline")
        was_outline = getattr(layer, "outline", False)
        ov.set_visible(key, True)
        if key.startswith(f"{LAYER_PREFIX}mask:") or key.startswith(f"{LAYER_PREFIX}drawn:"):
            row = next((r for r in self.mask_rows if r.entry.key == key), None)
            if row is not None:
                row.visible_box.blockSignals(True)
                row.visible_box.setChecked(True)
                row.visible_box.blockSignals(False)
                self.scroll.ensureWidgetVisible(row)
            was_visible = True  # clicking a mask shows it
        if is_mask:
            ov.set_outline(key, True)
        steps = [0.95, 0.25, 0.95, 0.25, 0.95]

        def step(i: int = 0) -> None:
            if key not in ov:
                return
            if i < len(steps):
                ov.set_opacity(key, steps[i])
                QTimer.singleShot(110, lambda: step(i + 1))
            else:
                ov.set_opacity(key, was_opacity)
                if is_mask:
                    ov.set_outline(key, was_outline)
                ov.set_visible(key, was_visible)

        step()

    # =================================================================== evidence ==
    def _fill_evidence(self, r: RunRecord) -> None:
        self.evidence_frames = []
        if not r.evidence:
            self.sec_evidence.add(_label("No evidence was built (the run stopped earlier).", color=DIM))
        for i, item in enumerate(r.evidence):
            fr = ClickableFrame()
            fr.setObjectName("EvidenceItem")
            fr.setStyleSheet("#EvidenceItem{background:#1e2329; border-radius:4px;}")
            lay = QHBoxLayout(fr)
            lay.setContentsMargins(6, 4, 6, 4)
            thumb = QLabel()
            thumb.setFixedSize(112, 112)
            thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
            thumb.setStyleSheet("background:#000;")
            img = item.images[1] if len(item.images) > 1 else (item.images[0] if item.images else None)
            if img is not None:
                thumb.setPixmap(numpy_to_pixmap(img).scaled(112, 112, Qt.AspectRatioMode.KeepAspectRatio,
                                                            Qt.TransformationMode.SmoothTransformation))
            else:
                thumb.setText("(image not stored)")
            lay.addWidget(thumb)
            title = EVIDENCE_TITLES.get(item.type, item.type.value)
            lines = [f"<b>{html.escape(title)}</b>"]
            if item.type == EvidenceType.CROP and item.crop_rect and not item.fallback:
                x0, y0, x1, y1 = item.crop_rect
                lines.append(f"Crop x {x0}\u2013{x1}, y {y0}\u2013{y1} ({x1 - x0}\u00d7{y1 - y0} px), "
                             f"<span style='color:{_rgb_hex(crop_colour())}'>yellow box</span> on the image")
            elif item.type == EvidenceType.MASK and not item.fallback:
                lines.append("The accepted masks as a separate binary image (never painted over the pixels)")
            elif item.type == EvidenceType.GLOBAL:
                lines.append("The whole slice, no local evidence")
            if item.entities:
                lines.append("From: " + html.escape(", ".join(item.entities)))
            if item.fallback:
                lines.append(f"<span style='color:#ffd27a'>Fell back to the global image: {html.escape(item.fallback)}</span>")
            lines.append(f"<span style='color:{DIM}'>Model inputs: {len(item.images) or len(item.image_files)} image(s)</span>")
            text = _label("<br>".join(lines), rich=True)
            lay.addWidget(text, 1)
            key = (f"{LAYER_PREFIX}crop:{i}" if item.type == EvidenceType.CROP
                   else next((e.key for e in self.entries if e.mask.entity in item.entities), None))
            if key:
                fr.setCursor(Qt.CursorShape.PointingHandCursor)
                fr.setToolTip("Click to show it on the image")
                fr.clicked.connect(lambda k=key: self.highlight(k))
            self.evidence_frames.append(fr)
            self.sec_evidence.add(fr)
        self.sec_evidence.set_title(f"Evidence ({len(r.evidence)})")

    # ==================================================================== answers ==
    def _fill_answers(self, r: RunRecord) -> None:
        self.answer_sections = []
        winner = r.vote.winner if r.vote else ""
        for a in r.answers:
            title = EVIDENCE_TITLES.get(a.evidence, a.evidence.value).split(" (")[0]
            shown = " ".join(a.answer.split()) or "(no answer)"
            mark = " \u2714" if winner and a.normalized == winner else ""
            ell = "\u2026" if len(shown) > 48 else ""
            sec = Section(f"{title}: {shown[:48]}{ell}{mark}", expanded=False)
            sec.header.setMinimumWidth(40)
            sec.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            sec.header.setStyleSheet("QToolButton{border:none; color:#c3cad2; text-align:left; padding:2px 0px;}")
            think = " ".join(a.think.split()) if a.think else ""
            parts = [f"<b>Reasoning</b><br>{html.escape(breakable(think)) if think else '<i>(none given)</i>'}",
                     f"<b>Answer</b><br>{html.escape(breakable(shown))}"]
            if a.mean_answer_prob is not None:
                parts.append(f"<span style='color:{DIM}'>Mean answer-token probability {a.mean_answer_prob:.3f}</span>")
            if a.format_violations:
                parts.append(f"<span style='color:#ffd27a'>Format: {html.escape('; '.join(a.format_violations))}</span>")
            sec.add(_label("<br>".join(parts), rich=True))
            self.answer_sections.append(sec)
            self.sec_answers.add(sec)
        if not r.answers:
            self.sec_answers.add(_label("No answer was produced.", color=DIM))
        if r.vote is not None and r.vote.votes:
            t = QTableWidget(len(r.vote.votes), 3)
            t.setObjectName("VoteTable")
            t.setHorizontalHeaderLabels(["Evidence", "Vote", "p"])
            t.verticalHeader().hide()
            t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
            t.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
            t.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
            t.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
            t.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            t.setWordWrap(False)
            t.setTextElideMode(Qt.TextElideMode.ElideRight)
            for i, v in enumerate(r.vote.votes):
                win = bool(winner) and v.normalized == winner
                cells = [v.evidence.value, elide(v.raw_answer or "(none)", 60) + ("  \u2714" if win else ""),
                         "n/a" if v.mean_prob is None else f"{v.mean_prob:.3f}"]
                for j, c in enumerate(cells):
                    it = QTableWidgetItem(c)
                    it.setToolTip(breakable(" ".join(v.raw_answer.split())) if j == 1 else c)
                    if win:
                        it.setForeground(QColor("#7fd6a0"))
                        f = it.font()
                        f.setBold(True)
                        it.setFont(f)
                    t.setItem(i, j, it)
            t.resizeRowsToContents()
            t.setFixedHeight(t.horizontalHeader().height() + sum(t.rowHeight(i) for i in range(t.rowCount())) + 4)
            self.vote_table = t
            self.sec_answers.add(t)
            counts = r.vote.counts.get(winner, 0) if winner else 0
            lines = [f"Winner: <b>{html.escape(breakable(elide(r.vote.winner_raw, 300)) or '(none)')}</b>"
                     + (f" ({counts} of {len(r.vote.votes)} votes)" if winner else "")]
            if r.vote.tie_break and r.vote.tie_break != "none":
                rule = {"mean_prob": "tie broken by the mean answer-token probability",
                        "evidence_order": "tie broken by evidence order (crop, mask, global)",
                        "no_valid_answers": "no valid answers"}.get(r.vote.tie_break, r.vote.tie_break)
                lines.append(f"<span style='color:#ffd27a'>Tie-break: {html.escape(rule)}</span>")
                lines.append(f"<span style='color:{DIM}'>{html.escape(breakable(elide(r.vote.detail, 400)))}</span>")
            self.sec_answers.add(_label("<br>".join(lines), rich=True))
        else:
            self.vote_table = None
        self.sec_answers.set_title(f"Answers and vote ({len(r.answers)})")

    # ================================================================ coordinator ==
    def _fill_coordinator(self, r: RunRecord) -> None:
        if not r.coordinator:
            self.sec_coord.add(_label("CARE-Flow: no coordinator", color=DIM))
            self.sec_coord.set_title("Coordinator")
            return
        lines = []
        d = getattr(r, "coordinator_decision", None)
        if d is not None:
            how = "the review" if d.source == "review" else "the CARE-Flow vote"
            text = f"<b>Decided by {how}</b>: {html.escape(d.final_answer or '(none)')}"
            if d.changed_vote:
                text += f" <span style='color:#ffd27a'>(differs from the vote: {html.escape(d.vote_answer)})</span>"
            if d.failure:
                text += f"<br><span style='color:#ff9a92'>{html.escape(d.failure)}</span>"
            lines.append(text)
        for ev in r.coordinator:
            lines.append(f"<span style='color:{DIM}'>{html.escape(_fmt_time(ev.time))}</span> "
                         f"<b>{html.escape(ev.kind)}</b> {html.escape(_event_summary(ev))}")
        self.sec_coord.add(_label("<br>".join(lines), rich=True))
        self.sec_coord.set_title(f"Coordinator ({len(r.coordinator)} steps)")
        self.sec_coord.set_expanded(True)

    # ================================================================= provenance ==
    def _fill_provenance(self, r: RunRecord) -> None:
        rows = []
        for role, m in r.models.items():
            rev = (m.revision[:10] if m.revision else "local")
            sha = f" \u00b7 sha256 {m.weights_sha256[:12]}" if m.weights_sha256 else ""
            rows.append(f"<b>{html.escape(role)}</b>: {html.escape(m.repo_id)} @ {html.escape(rev)} "
                        f"({html.escape(m.backend)}, {html.escape(m.device)}/{html.escape(m.dtype)}){sha}")
        if not rows:
            rows.append(f"<span style='color:{DIM}'>No model was loaded.</span>")
        inp = r.input
        win = inp.window
        rows.append(f"<b>Input</b>: {html.escape(inp.modality)} slice {inp.slice_index + 1}/{inp.num_slices}, "
                    f"{inp.image_size[0]}\u00d7{inp.image_size[1]} px, window "
                    f"C {win.get('center', 0):g} / W {win.get('width', 0):g}, pixels sha256 {inp.pixel_sha256[:16]}")
        rows.append(f"<b>Versions</b>: app {html.escape(r.app_version)}, prompts {html.escape(r.prompt_version)}, "
                    f"record schema {r.schema_version}")
        if r.timings:
            t = " \u00b7 ".join(f"{x.stage.value} {x.seconds:.2f} s" for x in r.timings)
            total = sum(x.seconds for x in r.timings)
            model = sum(x.model_seconds for x in r.timings)
            rows.append(f"<b>Timings</b>: {t} (total {total:.2f} s, of which models {model:.2f} s)")
        self.sec_prov.add(_label("<br>".join(rows), rich=True))
        if r.warnings:
            self.sec_prov.add(_label("<b>Warnings</b><br>" + "<br>".join(f"\u2022 {html.escape(breakable(w))}" for w in r.warnings),
                                     rich=True, color="#ffd27a"))
        if r.errors:
            self.sec_prov.add(_label("<b>Errors</b><br>" + "<br>".join(f"\u2022 {html.escape(breakable(e))}" for e in r.errors),
                                     rich=True, color="#ff9a92"))
        n_warn = len(r.warnings) + len(r.errors)
        self.sec_prov.set_title("Provenance" + (f" ({n_warn} warnings)" if n_warn else ""))
        if r.errors:
            self.sec_prov.set_expanded(True)

    # ================================================================== overrides ==
    def _fill_overrides(self) -> None:
        rec = self.state.record
        items = list(rec.overrides if rec else []) + list(self.state.overrides)
        if not items:
            self.sec_overrides.add(_label("None. Discarding a mask, drawing a box or re-asking is recorded here; "
                                          "the original run is never changed.", color=DIM))
            self.sec_overrides.set_title("Clinician overrides")
            return
        lines = []
        for o in items:
            ro = o.as_record_override() if hasattr(o, "as_record_override") else o
            kind = getattr(o, "kind", "") or ro.target
            change = f"{ro.old} \u2192 {ro.new}" if ro.old or ro.new else ""
            who = f" by {ro.author}" if ro.author else ""
            lines.append(f"<span style='color:{DIM}'>{html.escape(_fmt_time(ro.time))}{html.escape(who)}</span> "
                         f"<b>{html.escape(kind)}</b> {html.escape(ro.target)} {html.escape(change)}"
                         + (f" <i>{html.escape(ro.note)}</i>" if ro.note else ""))
        self.sec_overrides.add(_label("<br>".join(lines), rich=True))
        self.sec_overrides.set_title(f"Clinician overrides ({len(items)})")


def _ev_names(items: Sequence[Any]) -> str:
    return ", ".join(getattr(e, "value", str(e)) for e in items)


def _event_summary(ev: Any) -> str:
    """One line for a coordinator event from whichever typed payload it carries."""
    if getattr(ev, "plan", None) is not None:
        p = ev.plan
        return f"evidence {_ev_names(p.evidence)}" + (f": {p.rationale}" if p.rationale else "")
    if getattr(ev, "round", None) is not None:
        x = ev.round
        return f"round {x.round}: {_ev_names(x.evidence)}" + (f" ({x.reason})" if x.reason else "")
    if getattr(ev, "reground", None) is not None:
        x = ev.reground
        u = "n/a" if x.uncertainty is None else f"{x.uncertainty:.2f}"
        return f"uncertainty {u} vs {x.threshold:.2f} -> {x.action}" + (f" ({x.reason})" if x.reason else "")
    if getattr(ev, "review", None) is not None:
        x = ev.review
        return f"round {x.round}: {x.action} {x.candidate}" + (f": {x.rationale}" if x.rationale else "")
    if getattr(ev, "decision", None) is not None:
        x = ev.decision
        return f"{x.final_answer or '(none)'} (from {x.source})"
    if getattr(ev, "error", ""):
        return ev.error
    return ", ".join(f"{k}={v}" for k, v in (ev.detail or {}).items())


def _color_icon(color: Sequence[int]):
    from PySide6.QtGui import QIcon

    pm = QPixmap(12, 12)
    pm.fill(QColor(*color[:3]))
    return QIcon(pm)
