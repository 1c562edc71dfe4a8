"""The audit panel: everything one CARE run did, readable by the radiologist who asked.

Top: the final answer, prominently, with the decision-support disclaimer. Then, in
collapsible sections: (1) the proposed entities and what merged into what; (2) every mask as
a coloured overlay on the viewer with its confidence against tau (rejected masks greyed,
struck through and hidden by default, each toggleable, with an opacity slider and a Discard
button); (3) the evidence the VQA model saw; (4) each evidence pass's reasoning and answer
and the vote table; (5) the coordinator timeline; (6) provenance; (7) the clinician overrides.

All wording comes from the run's presentation (:mod:`app.audit.present`) and the mask/edit
state from :mod:`app.audit.audit_view_model`; this module composes the sections and draws
the overlays on the viewer itself (layers named ``care:*``). The clinician's edits leave as
signals; the controller records them in the audit store.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QListWidget, QScrollArea, QTableWidget, QVBoxLayout, QWidget

from app.audit import audit_view_model as vm
from app.audit.audit_view_model import LAYER_PREFIX, MaskEntry
from app.audit.palette import CROP_COLOUR
from app.audit.present import build_presentation, override_rows
from app.pipeline.record import MaskRecord, RunRecord
from app.pipeline.types import EvidenceType
from app.pipeline.vocab import RunStatus
from app.study.display_frame import display_frame
from app.study.reformat import native_plane

from .answers import fill_answers
from .coordinator import fill_coordinator
from .entities import fill_entities
from .evidence import fill_evidence
from .header import AnswerHeader
from .masks import MaskRow
from .overrides import fill_overrides
from .provenance import fill_provenance
from .study import fill_study
from .widgets import DIM, ClickableFrame, Section, label

_REASKABLE = (RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED)


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
    slice_requested = Signal(int)  # a study-scope evidence slice was clicked (0-based index)

    def __init__(self, view, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AuditPanel")
        self.view = view
        self.state = PanelState()
        self.entries: list[MaskEntry] = []
        self.mask_rows: list[MaskRow] = []

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.header = AnswerHeader(self)
        self.header.draw_box_toggled.connect(self.draw_box_toggled)
        self.header.reask_requested.connect(self.reask_requested)
        self.header.export_requested.connect(self.export_requested)
        # The header's widgets, by the names the controller and the tests use.
        h = self.header
        self.status_label, self.answer_label, self.disclaimer = h.status_label, h.answer_label, h.disclaimer
        self.draw_button, self.reask_button, self.export_button = h.draw_button, h.reask_button, h.export_button
        self.edits_label = h.edits_label
        outer.addWidget(self.header)

        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.body_layout = QVBoxLayout(body)
        self.body_layout.setContentsMargins(8, 6, 8, 8)
        self.body_layout.setSpacing(4)
        self.sec_study = Section("Study scope")
        self.sec_entities = Section("Entities")
        self.sec_masks = Section("Masks")
        self.sec_evidence = Section("Evidence")
        self.sec_answers = Section("Answers and vote")
        self.sec_coord = Section("Coordinator", expanded=False)
        self.sec_prov = Section("Provenance", expanded=False)
        self.sec_overrides = Section("Clinician overrides")
        for s in self._sections():
            self.body_layout.addWidget(s)
        self.body_layout.addStretch(1)
        self.scroll.setWidget(body)
        outer.addWidget(self.scroll, 1)
        self.entity_list: QListWidget | None = None
        self.vote_table: QTableWidget | None = None
        self.evidence_frames: list[ClickableFrame] = []
        self.answer_sections: list[Section] = []
        self.study_frames: list[ClickableFrame] = []
        self.show_record(None)

    def _sections(self) -> tuple[Section, ...]:
        return (self.sec_study, self.sec_entities, self.sec_masks, self.sec_evidence, self.sec_answers, self.sec_coord,
                self.sec_prov, self.sec_overrides)

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
        self.reask_button.setEnabled(has and record.status in _REASKABLE)
        self.export_button.setEnabled(has)
        # DICOM export is of completed runs only (app.dicom_export refuses the others).
        for b in (self.header.dicom_button, self.header.pacs_button):
            b.setEnabled(has and record.status == RunStatus.COMPLETED)
        for s in self._sections():
            s.clear()
            s.setVisible(has)
        if record is None:
            self.header.show_empty()
            self.mask_rows = []
            self._update_edits()
            return
        pres = build_presentation(record, self.state.overrides)
        self.header.show_run(pres, note)
        self.study_frames = fill_study(self.sec_study, record, pres, self.jump_to_slice)
        self.entity_list = fill_entities(self.sec_entities, pres, self.highlight)
        self.entries = vm.run_entries(record, self.state.overrides)
        self._fill_masks(pres.mask_note)
        self.evidence_frames = fill_evidence(self.sec_evidence, record, pres, self.entries, self.highlight)
        self.answer_sections, self.vote_table = fill_answers(self.sec_answers, pres)
        fill_coordinator(self.sec_coord, pres)
        fill_provenance(self.sec_prov, pres)
        fill_overrides(self.sec_overrides, pres.overrides)
        self._draw_overlays()
        self._update_edits()

    def set_overrides(self, overrides: Sequence[Any]) -> None:
        self.state.overrides = list(overrides)
        self.sec_overrides.clear()
        rec = self.state.record
        fill_overrides(self.sec_overrides, override_rows(list(rec.overrides if rec else []) + self.state.overrides))

    def add_drawn_mask(self, mask: MaskRecord, slice_index: int, box: tuple[int, int, int, int]) -> MaskEntry:
        """A box the clinician drew since the run, segmented: a new row and overlay."""
        entry = vm.drawn_entry(self.entries, mask, slice_index, box)
        self.entries.append(entry)
        self._add_mask_row(entry)
        self._add_mask_overlay(entry)
        self.sec_masks.set_title(vm.masks_title(self.entries))
        self._update_edits()
        self.sec_masks.setVisible(True)
        self.sec_masks.set_expanded(True)
        return entry

    def edited_evidence(self) -> tuple[list[tuple[int, int, int, int]], set[str]]:
        """(boxes, discarded entity names) for a re-ask: the run's clinician boxes and the new
        ones, minus what the clinician discarded."""
        boxes, discarded = vm.edited_evidence(self.state.record, self.entries)
        if self._legacy_layout() and self.view.volume is not None:
            # The run's own boxes come first, in the old array layout; drawn ones are display-frame.
            drawn = sum(1 for e in self.entries if e.index is None and not e.discarded and e.drawn_box)
            frame, n = display_frame(self.view.volume), len(boxes) - drawn
            boxes = [tuple(int(round(c)) for c in frame.box_from_array(b)) for b in boxes[:n]] + boxes[n:]
        return boxes, discarded

    def drawn_boxes(self) -> list[tuple[int, int, int, int]]:
        """Boxes drawn (and kept) since the shown run, in the display frame: no run used them yet."""
        return [e.drawn_box for e in self.entries if e.index is None and not e.discarded and e.drawn_box]

    def has_edits(self) -> bool:
        return vm.has_edits(self.entries)

    def set_draw_active(self, on: bool) -> None:
        self.draw_button.blockSignals(True)
        self.draw_button.setChecked(on)
        self.draw_button.blockSignals(False)

    def clear_overlays(self) -> None:
        ov = self.view.overlays
        for name in [n for n in ov.names() if n.startswith(LAYER_PREFIX) and n != vm.DRAWING_LAYER]:
            ov.remove(name)

    def entry(self, key: str) -> MaskEntry:
        return next(e for e in self.entries if e.key == key)

    def row(self, key: str) -> MaskRow:
        return next(r for r in self.mask_rows if r.entry.key == key)

    # ====================================================================== masks ==
    def _fill_masks(self, note: str) -> None:
        self.mask_rows = []
        if not self.entries:
            self.sec_masks.add(label("No masks: no entity reached segmentation.", color=DIM))
        for e in self.entries:
            self._add_mask_row(e)
        self.sec_masks.add(label(note, color=DIM))
        self.sec_masks.set_title(vm.masks_title(self.entries))

    def _add_mask_row(self, e: MaskEntry) -> None:
        row = MaskRow(e)
        row.visibility_changed.connect(lambda on, key=e.key: self._set_layer_visible(key, on))
        row.opacity_changed.connect(lambda a, key=e.key: self._set_layer_opacity(key, a))
        row.discard_toggled.connect(lambda on, ent=e: self._on_discard(ent, on))
        row.clicked.connect(lambda key=e.key: self.highlight(key))
        self.mask_rows.append(row)
        # Rows go above the explanatory note (the last widget) once it exists.
        self.sec_masks.body_layout.insertWidget(len(self.mask_rows) - 1, row)

    def _on_discard(self, e: MaskEntry, on: bool) -> None:
        ov = self.view.overlays
        if e.key in ov:
            ov.set_visible(e.key, not on and e.mask.accepted or (not on and e.index is None))
        self.row(e.key).visible_box.blockSignals(True)
        self.row(e.key).visible_box.setChecked(e.key in ov and ov.get(e.key).visible)
        self.row(e.key).visible_box.blockSignals(False)
        self.sec_masks.set_title(vm.masks_title(self.entries))
        self._update_edits()
        self.discard_toggled.emit(e, on)

    def _update_edits(self) -> None:
        self.header.set_edits(vm.edits_text(self.entries))

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
        frame = display_frame(self.view.volume)
        for i, item in enumerate(r.evidence):
            if item.type == EvidenceType.CROP and item.crop_rect and not item.fallback:
                rect = tuple(item.crop_rect)
                if self._legacy_layout():
                    rect = frame.box_from_array(rect)
                self.view.overlays.add_box(vm.crop_key(i), r.input.slice_index, rect,
                                           CROP_COLOUR, line_width=1.5, label="zoom-in crop")

    def _legacy_layout(self) -> bool:
        """A run recorded before the display frame (no ``input.plane``) kept its masks and boxes
        in ``volume.slice(k)`` layout: they are mapped to the display frame to be shown."""
        r = self.state.record
        return r is not None and not r.input.plane

    def _add_mask_overlay(self, e: MaskEntry) -> None:
        if e.mask.mask is None or self.view.volume is None:
            return
        frame = display_frame(self.view.volume)
        mask = np.asarray(e.mask.mask, bool)
        if e.index is not None and self._legacy_layout() and mask.shape == frame.array_shape:
            mask = frame.from_array(mask)
        if mask.shape != frame.shape:  # masks are in the display frame
            return
        if e.key in self.view.overlays:
            self.view.overlays.remove(e.key)
        row = next((r for r in self.mask_rows if r.entry is e), None)
        visible = row.visible_box.isChecked() if row is not None else e.shown_by_default
        opacity = row.opacity.value() / 100.0 if row is not None else 0.4
        self.view.overlays.add(e.key, mask, e.color, opacity, visible, slice_index=e.slice_index)

    def _set_layer_visible(self, key: str, on: bool) -> None:
        if key in self.view.overlays:
            self.view.overlays.set_visible(key, on)

    def _set_layer_opacity(self, key: str, a: float) -> None:
        if key in self.view.overlays:
            self.view.overlays.set_opacity(key, a)

    def jump_to_slice(self, k: int) -> None:
        """Go to slice ``k`` of the run's series on the acquisition plane (when it is displayed)."""
        v, r = self.view.volume, self.state.record
        if (self.state.on_view and v is not None and r is not None and 0 <= k < v.num_slices
                and (not r.input.series_uid or v.series_uid == r.input.series_uid)):
            self.view.set_plane(native_plane(v))
            self.view.set_slice(k)
        self.slice_requested.emit(k)

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
        if vm.is_mask_key(key):
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
                QTimer.singleShot(110, self.view, lambda: step(i + 1))  # dropped if the view is deleted
            else:
                ov.set_opacity(key, was_opacity)
                if is_mask:
                    ov.set_outline(key, was_outline)
                ov.set_visible(key, was_visible)

        step()
