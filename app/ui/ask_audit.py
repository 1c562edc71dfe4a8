"""Ask-and-audit: the controller joining the viewer, the Ask/Audit/History panels, the
pipeline worker and the audit store.

``install_ask_audit(window)`` adds the three docks, the File > Export evidence report
and Tools > Draw box actions, and keeps everything in step with the displayed series:

- Ask runs CARE on the *displayed* acquisition-plane slice with the *displayed* window
  (what the radiologist sees is what the models see), on a worker thread.
- Every run is committed to the audit store at start and finished whatever the outcome.
- Clinician edits (discard a mask, draw a box) are appended as overrides of the run; the
  original record never changes. "Re-ask with edited evidence" is a new run whose
  ``parent_run_id`` names the first.
- A box drawn on a slice that has no run yet is kept for the next question on that slice.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from app.pipeline.record import RunRecord
from app.study.reformat import native_plane
from app.study.volume import Volume

from .ask_panel import AskPanel
from .audit_panel import AuditPanel, MaskEntry
from .history_panel import HistoryPanel
from .override_tools import BoxDrawTool
from .run_worker import BoxOutcome, PipelineCache, Progress, RunHandle, RunOutcome, RunRequest, current_user, segment_box_task
from .theme import icon
from .workers import Worker

log = logging.getLogger(__name__)

PENDING_PREFIX = "box:pending:"


class AskAuditController(QObject):
    run_finished = Signal(object)  # RunOutcome
    box_segmented = Signal(object)  # BoxOutcome
    report_written = Signal(str)  # path
    report_failed = Signal(str)
    history_changed = Signal()

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.view = window.view
        self.pipelines = PipelineCache()
        self._store: Any = None
        self.handle: RunHandle | None = None
        self.box_worker: Worker | None = None
        self.report_worker: Worker | None = None
        self.current_run_id: str | None = None
        self.current_persisted = False
        self.current_patient = None
        # Boxes drawn on a slice without a run yet: (series uid, slice) -> [(box, mask record)]
        self.pending: dict[tuple[str, int], list[tuple[tuple[int, int, int, int], Any]]] = {}

        self.ask = AskPanel(window)
        self.audit = AuditPanel(self.view, window)
        self.history = HistoryPanel(window)
        self.draw_tool = BoxDrawTool(self.view, self)

        self._build_docks()
        self._build_actions()
        self._wire()
        self._update_target()

    # ============================================================== construction ==
    def _build_docks(self) -> None:
        w = self.window
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.ask_dock = w.add_dock("Ask", self.ask, right, object_name="dock-ask")
        self.audit_dock = w.add_dock("Audit", self.audit, right, object_name="dock-audit")
        self.history_dock = w.add_dock("History", self.history, right, object_name="dock-history")
        # Ask on top; Audit, History and the DICOM tags share the tabs below it. add_dock
        # tabified everything: re-adding the Ask dock takes it out of the tab group.
        w.addDockWidget(right, self.ask_dock)
        w.splitDockWidget(self.ask_dock, self.audit_dock, Qt.Orientation.Vertical)
        w.tabifyDockWidget(self.audit_dock, self.history_dock)
        tags = getattr(w, "tags_dock", None)
        if tags is not None:
            w.tabifyDockWidget(self.audit_dock, tags)
        self.audit_dock.raise_()
        w.resizeDocks([self.ask_dock, self.audit_dock], [230, 650], Qt.Orientation.Vertical)

    def _build_actions(self) -> None:
        w = self.window
        self.act_export = QAction(icon("mdi6.file-pdf-box"), "Export Evidence &Report\u2026", w)
        self.act_export.setShortcut(QKeySequence("Ctrl+E"))
        self.act_export.triggered.connect(lambda: self.export_dialog())
        w.addAction(self.act_export)
        self.act_draw = QAction(icon("mdi6.vector-rectangle"), "Draw &Box (segment a structure)", w)
        self.act_draw.setCheckable(True)
        self.act_draw.setShortcut(QKeySequence("B"))
        self.act_draw.setToolTip("Left-drag a box around a structure; LiteMedSAM segments it  (B)")
        self.act_draw.toggled.connect(self.set_draw_mode)
        w.addAction(self.act_draw)
        menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions() if a.menu() is not None}
        file_menu, tools_menu = menus.get("File"), menus.get("Tools")
        if file_menu is not None:
            quit_action = getattr(w, "act_quit", None)
            file_menu.insertAction(quit_action, self.act_export) if quit_action else file_menu.addAction(self.act_export)
            file_menu.insertSeparator(quit_action) if quit_action else None
        if tools_menu is not None:
            tools_menu.addSeparator()
            tools_menu.addAction(self.act_draw)
        tb = getattr(w, "toolbar", None)
        if tb is not None:
            tb.addSeparator()
            tb.addAction(self.act_draw)
        self._update_actions()

    def _wire(self) -> None:
        w, v = self.window, self.view
        self.ask.run_requested.connect(self.start_run)
        self.ask.cancel_requested.connect(self.cancel_run)
        self.audit.discard_toggled.connect(self._on_discard)
        self.audit.reask_requested.connect(self.reask)
        self.audit.export_requested.connect(lambda: self.export_dialog())
        self.audit.draw_box_toggled.connect(self.act_draw.setChecked)
        self.history.open_requested.connect(self.reopen)
        self.history.export_requested.connect(lambda rid: self.export_dialog(rid))
        self.history.refresh_button.clicked.connect(self.refresh_history)
        self.draw_tool.box_drawn.connect(self.segment_box)
        self.draw_tool.rejected.connect(lambda msg: w.status.showMessage(msg, 6000))
        self.draw_tool.active_changed.connect(self._on_draw_active)
        w.volume_shown.connect(self._on_volume_shown)
        w.series_loaded.connect(lambda _v: (self._update_target(), self.refresh_history()))
        v.slice_changed.connect(lambda *_: self._update_target())
        v.plane_changed.connect(lambda *_: self._update_target())
        v.window_changed.connect(lambda *_: self._update_target())

    # ================================================================== storage ==
    @property
    def store(self) -> Any:
        """The audit store, opened on first use ($CARE_DATA_DIR or the user data folder)."""
        if self._store is None:
            from app.audit.store import AuditStore

            self._store = AuditStore()
        return self._store

    def _store_or_message(self) -> Any:
        try:
            return self.store
        except Exception as exc:  # noqa: BLE001 - AuditStoreError: one line in the status bar
            self.window.status.showMessage(f"Audit trail unavailable: {exc}", 15000)
            return None

    # =================================================================== target ==
    def run_target(self) -> tuple[Volume, int] | None:
        v = self.window.current_volume
        if v is None or self.window.is_loading:
            return None
        return v, self.view.slice_index_for(native_plane(v))

    def _update_target(self) -> None:
        v = self.window.current_volume
        if v is None:
            self.ask.set_target("No study open", False)
            return
        if self.window.is_loading:
            self.ask.set_target("Loading the series\u2026 (Ask once it is complete)", False)
            return
        plane = native_plane(v)
        k = self.view.slice_index_for(plane)
        text = f"Slice {k + 1}/{v.num_slices} ({plane.value})"
        if not v.is_rgb:
            win = self.view.window
            text += f" \u00b7 W {win.width:.0f} L {win.center:.0f}"
        if self.view.plane != plane:
            text += f" \u2014 the view shows {self.view.plane.value}; CARE reads the {plane.value} slice"
        n = len(self.pending.get((v.series_uid, k), []))
        if n:
            text += f" \u00b7 {n} drawn box{'es' if n > 1 else ''} included"
        self.ask.set_target(text, True)

    def _on_volume_shown(self, volume: Volume | None) -> None:
        self._update_target()
        if volume is not None:
            self._redraw_pending()
            rec = self.audit.record
            if rec is not None and (not rec.input.series_uid or rec.input.series_uid == volume.series_uid):
                self.audit.state.on_view = True
                self.audit._draw_overlays()
        self.refresh_history()

    # ====================================================================== runs ==
    def consent_prompt(self, url: str, statement: str) -> bool:
        """Ask before images leave the machine (the statement verbatim, explicit button)."""
        box = QMessageBox(self.window)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Send images to a remote server?")
        box.setText(statement)
        send = box.addButton("Send images to this server", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(QMessageBox.StandardButton.NoButton)
        box.exec()
        return box.clickedButton() is send

    def _ensure_consent(self, profile_name: str) -> str:
        """'' when every remote endpoint of the profile may receive images, else why not."""
        from app.pipeline.profiles import load_profile

        try:
            prof = load_profile(profile_name)
        except (KeyError, OSError, ValueError) as exc:
            return str(exc)
        urls = sorted({str(s.options.get("endpoint") or s.options.get("base_url") or "")
                       for s in prof.models.values() if s.backend == "remote"} - {""})
        if not urls:
            return ""
        from app.pipeline.remote.consent import ConsentStore, consent_statement

        store = ConsentStore()
        for url in urls:
            try:
                if store.has_consent(url):
                    continue
            except Exception as exc:  # noqa: BLE001 - a malformed endpoint in the manifest
                return f"Remote endpoint {url}: {exc}"
            if not self.consent_prompt(url, consent_statement(url)):
                return f"No images were sent: sending to {url} was not allowed."
            store.grant(url, who=current_user() or None, via="gui")
        return ""

    def start_run(self, question: str, profile: str, mode: str = "flow", *, boxes=None, discarded=None,
                  parent_run_id: str | None = None, slice_index: int | None = None, window=None) -> RunHandle | None:
        if self.handle is not None:
            return None
        target = self.run_target()
        if target is None:
            self.ask.show_message("Open a study and wait until it has loaded, then ask.", "warning")
            return None
        volume, k = target
        if slice_index is not None:
            k = slice_index
        if not question.strip():
            self.ask.show_message("Type a question first.", "warning")
            return None
        store = self._store_or_message()
        if store is None:
            self.ask.show_message("The audit trail cannot be opened, so no run was started (see the status bar).",
                                  "error", title="Audit trail unavailable")
            return None
        refusal = self._ensure_consent(profile)
        if refusal:
            self.ask.show_message(refusal, "warning", title="Not sent")
            return None
        if boxes is None:
            boxes = [b for b, _ in self.pending.get((volume.series_uid, k), [])]
        req = RunRequest(volume, k, question, profile, mode, window or (None if volume.is_rgb else self.view.window),
                         list(boxes), set(discarded or ()), parent_run_id)
        self.draw_tool.set_active(False)
        self.current_patient = volume.patient
        handle = RunHandle(req, self.pipelines, lambda: store, patient=volume.patient)
        self.handle = handle
        s = handle.signals
        s.partial.connect(lambda p, h=handle: self._on_progress(h, p))
        s.finished.connect(lambda outcome, h=handle: self._on_finished(h, outcome))
        s.errored.connect(lambda msg, h=handle: self._on_finished(h, RunOutcome(None, msg, "internal")))
        self.ask.run_started(question)
        self._update_actions()
        handle.start()
        return handle

    def cancel_run(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def _on_progress(self, handle: RunHandle, p: Progress) -> None:
        if handle is self.handle:
            self.ask.on_progress(p)

    def _on_finished(self, handle: RunHandle, outcome: RunOutcome) -> None:
        if handle is not self.handle:
            return
        self.handle = None
        self.ask.run_finished(outcome)
        rec = outcome.record
        if rec is not None:
            volume = handle.request.volume
            self.current_run_id = rec.run_id
            self.current_persisted = outcome.persisted
            # Boxes used by this run are now part of its record, not pending any more.
            key = (volume.series_uid, handle.request.slice_index)
            if key in self.pending and handle.request.parent_run_id is None:
                self.pending.pop(key, None)
                self._redraw_pending()
            shown = self.window.current_volume is volume
            self.audit.show_record(rec, [], on_view=shown)
            self.audit_dock.raise_()
            parent = outcome.parent_run_id
            if parent and outcome.persisted:
                boxes, discarded = handle.request.boxes, sorted(handle.request.discarded)
                self._append_override(parent, "reask", {
                    "target": "run", "old": parent, "new": rec.run_id,
                    "note": f"re-asked with {len(boxes)} box(es), discarded: {', '.join(discarded) or 'none'}"})
        self._update_actions()
        self._update_target()
        self.refresh_history()
        self.run_finished.emit(outcome)

    def reask(self) -> RunHandle | None:
        rec = self.audit.record
        if rec is None or self.handle is not None:
            return None
        v = self.window.current_volume
        if v is None or (rec.input.series_uid and v.series_uid != rec.input.series_uid):
            self.ask.show_message("Open the run's series to re-ask it.", "warning")
            return None
        boxes, discarded = self.audit.edited_evidence()
        from app.study.volume import Window

        win = rec.input.window
        window = Window(float(win["center"]), float(win["width"]), str(win.get("name", ""))) if win else None
        return self.start_run(rec.question, rec.profile, rec.mode, boxes=boxes, discarded=discarded,
                              parent_run_id=rec.run_id if self.current_persisted else None,
                              slice_index=rec.input.slice_index, window=window)

    # ================================================================= overrides ==
    def _append_override(self, run_id: str | None, kind: str, detail: dict) -> bool:
        if not run_id:
            return False
        store = self._store_or_message()
        if store is None:
            return False
        try:
            store.append_override(run_id, kind, detail, who=current_user())
        except Exception as exc:  # noqa: BLE001 - the run is not in the store (unsaved): say so
            self.window.status.showMessage(f"The change could not be recorded: {exc}", 10000)
            return False
        if run_id == self.current_run_id:
            self.audit.set_overrides(store.overrides(run_id))
        self.refresh_history()
        return True

    def _on_discard(self, entry: MaskEntry, discarded: bool) -> None:
        m = entry.mask
        target = f"masks[{entry.index}]" if entry.index is not None else f"drawn box {entry.key.rsplit(':', 1)[-1]}"
        old = ("accepted" if m.accepted else "below tau") if discarded else "discarded"
        new = "discarded" if discarded else ("accepted" if m.accepted else "below tau")
        self._append_override(self.current_run_id if self.current_persisted else None,
                              "mask_discard" if discarded else "mask_restore",
                              {"target": target, "old": old, "new": new, "note": f"{m.entity} (C={m.confidence:.3f})"})

    # ====================================================================== boxes ==
    def set_draw_mode(self, on: bool) -> None:
        self.draw_tool.set_active(on)

    def _on_draw_active(self, on: bool) -> None:
        self.act_draw.blockSignals(True)
        self.act_draw.setChecked(on)
        self.act_draw.blockSignals(False)
        self.audit.set_draw_active(on)
        if on:
            self.window.status.showMessage("Draw box: left-drag around a structure (Esc to stop)", 8000)

    def _segment_profile(self) -> str:
        rec = self.audit.record
        return rec.profile if rec is not None else self.ask.selected_profile()

    def segment_box(self, slice_index: int, box: tuple[int, int, int, int]) -> Worker | None:
        """Segment a drawn box with the profile's box-prompted segmenter (LiteMedSAM)."""
        v = self.window.current_volume
        if v is None or self.box_worker is not None:
            return None
        rec = self.audit.record
        edit = (rec is not None and rec.input.slice_index == slice_index
                and (not rec.input.series_uid or rec.input.series_uid == v.series_uid))
        if edit:
            from app.study.volume import Window

            win = rec.input.window
            window = Window(float(win["center"]), float(win["width"]), str(win.get("name", ""))) if win else v.window
            n = sum(1 for e in rec.entities.final if e.source == "clinician") + sum(
                1 for e in self.audit.entries if e.index is None)
        else:
            window = self.view.window
            n = len(self.pending.get((v.series_uid, slice_index), []))
        name = f"clinician region {n + 1}"
        profile = self._segment_profile()
        self.window.status.showMessage(f"Segmenting the box with {profile}'s box segmenter\u2026")
        pipelines = self.pipelines
        worker = Worker(lambda ctx: segment_box_task(pipelines, profile, v, slice_index, window, box, name),
                        name="box segmentation")
        self.box_worker = worker
        worker.signals.finished.connect(lambda out, e=edit, vol=v: self._on_box(out, e, vol))
        worker.signals.errored.connect(lambda msg: self._on_box(BoxOutcome(None, slice_index, box, msg), False, v))
        worker.start()
        return worker

    def _on_box(self, out: BoxOutcome, edit: bool, volume: Volume) -> None:
        self.box_worker = None
        if out.mask is None:
            self.window.status.showMessage(out.error or "box segmentation failed", 12000)
            self.ask.show_message(out.error or "box segmentation failed", "error", title="Box not segmented")
            self.box_segmented.emit(out)
            return
        m = out.mask
        verdict = "accepted" if m.accepted else f"below \u03c4 {m.tau:.2f}"
        self.window.status.showMessage(f"{m.entity}: {m.backend} mask, confidence {m.confidence:.2f} ({verdict})", 10000)
        if edit and self.audit.record is not None:
            self.audit.add_drawn_mask(m, out.slice_index, out.box)
            self._append_override(self.current_run_id if self.current_persisted else None, "box_added", {
                "target": m.entity, "old": "", "new": list(out.box),
                "note": f"{m.backend} mask on slice {out.slice_index + 1}: C={m.confidence:.3f} ({verdict}), "
                        f"{m.area_px} px"})
        else:
            self.pending.setdefault((volume.series_uid, out.slice_index), []).append((out.box, m))
            self._redraw_pending()
            self._update_target()
        self.box_segmented.emit(out)

    def _redraw_pending(self) -> None:
        ov = self.view.overlays
        for name in [n for n in ov.names() if n.startswith(PENDING_PREFIX)]:
            ov.remove(name)
        v = self.window.current_volume
        if v is None:
            return
        from app.audit.report.composite import mask_colour

        i = 0
        for (uid, k), items in self.pending.items():
            if uid != v.series_uid:
                continue
            for box, m in items:
                if m.mask is not None and m.mask.shape == v.slice(k).shape[:2]:
                    ov.add(f"{PENDING_PREFIX}{i}", m.mask, mask_colour(6 + i), 0.45, slice_index=k)
                ov.add_box(f"{PENDING_PREFIX}{i}:box", k, box, (255, 255, 255), line_width=1.0,
                           label=f"{m.entity} C {m.confidence:.2f}")
                i += 1

    # =================================================================== history ==
    def refresh_history(self) -> None:
        v = self.window.current_volume
        if v is None:
            self.history.set_runs([], "No study open")
            self.history_changed.emit()
            return
        if self._store is None and not _store_exists():
            self.history.set_runs([], "No runs yet for this study")
            self.history_changed.emit()
            return
        store = self._store_or_message()
        if store is None:
            return
        try:
            runs = store.list_runs(study_uid=v.study_uid or None)
        except Exception as exc:  # noqa: BLE001
            self.history.set_runs([], f"History unavailable: {exc}")
            return
        n = len(runs)
        cap = f"{n} run{'s' if n != 1 else ''} for this study" if n else "No runs yet for this study"
        self.history.set_runs(runs, cap, self.current_run_id)
        self.history_changed.emit()

    def reopen(self, run_id: str) -> bool:
        """Show a stored run: switch to its series and slice, restore overlays and audit."""
        store = self._store_or_message()
        if store is None:
            return False
        try:
            loaded = store.load_run(run_id)
        except Exception as exc:  # noqa: BLE001 - damaged/unknown run: a message
            self.window.status.showMessage(f"Cannot open the run: {exc}", 12000)
            return False
        rec: RunRecord = loaded.record
        target = next((v for v in self.window.volumes if v.series_uid == rec.input.series_uid), None)
        note = ""
        if target is not None:
            if target is not self.window.current_volume:
                self.window.show_volume(target)
            self.view.set_plane(native_plane(target))
            self.view.set_slice(rec.input.slice_index)
        else:
            note = "This run's series is not open, so its masks are not drawn on the image."
        self.current_run_id = rec.run_id
        self.current_persisted = True
        self.current_patient = loaded.patient
        self.audit.show_record(rec, loaded.overrides, on_view=target is not None, note=note)
        self.audit_dock.raise_()
        self.history.set_runs(self.history.runs, self.history.caption.text(), rec.run_id)
        self._update_actions()
        return True

    # ==================================================================== report ==
    def export_dialog(self, run_id: str | None = None) -> None:
        rid = run_id or self.current_run_id
        if rid is None:
            self.window.status.showMessage("No run to report: ask a question or open one from the History", 8000)
            return
        dlg = ExportReportDialog(self.window, default_report_path(rid))
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.export_report(rid, dlg.path(), dlg.page_size(), dlg.deidentify())

    def export_report(self, run_id: str, path: str | Path, page_size: str = "A4", deidentify: bool = False) -> Worker | None:
        store = self._store_or_message()
        if store is None:
            return None
        from app.audit.report import build_report

        out = Path(path)

        def task(_ctx) -> str:
            loaded = store.load_run(run_id)
            build_report(loaded.record, out, overrides=loaded.overrides, page_size=page_size,
                         deidentify=deidentify, patient=loaded.patient)
            return str(out)

        self.window.status.showMessage(f"Writing the evidence report to {out.name}\u2026")
        worker = Worker(task, name="report")
        self.report_worker = worker
        worker.signals.finished.connect(self._on_report)
        worker.signals.errored.connect(self._on_report_failed)
        worker.start()
        return worker

    def _on_report(self, path: str) -> None:
        self.report_worker = None
        QSettings("CARE", "CARE Viewer").setValue("report/last_dir", str(Path(path).parent))
        self.window.status.showMessage(f"Evidence report written: {path}", 15000)
        self.report_written.emit(path)

    def _on_report_failed(self, msg: str) -> None:
        self.report_worker = None
        self.window.status.showMessage(msg, 15000)
        self.ask.show_message(msg, "error", title="Report not written")
        self.report_failed.emit(msg)

    # ===================================================================== misc ==
    def _update_actions(self) -> None:
        self.act_export.setEnabled(self.current_run_id is not None)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Window closing: stop a run at its next stage boundary and let it finish recording."""
        self.draw_tool.set_active(False)
        if self.handle is not None:
            h = self.handle
            h.cancel()
            h.wait(timeout)
        for w in (self.box_worker, self.report_worker):
            if w is not None:
                w.wait(timeout)
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                pass
            self._store = None


def _store_exists() -> bool:
    from app.audit.paths import default_db_path

    try:
        return default_db_path().exists()
    except Exception:  # noqa: BLE001
        return False


def default_report_path(run_id: str) -> str:
    last = QSettings("CARE", "CARE Viewer").value("report/last_dir", str(Path.home()))
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return str(Path(str(last)) / f"care-report-{stamp}-{run_id[:8]}.pdf")


class ExportReportDialog(QDialog):
    """Where to write the PDF, page size, de-identification."""

    def __init__(self, parent: QWidget | None, default_path: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export evidence report")
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit(default_path)
        self.path_edit.setMinimumWidth(380)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form.addRow("Save as", row)
        self.size_combo = QComboBox()
        self.size_combo.addItems(["A4", "Letter"])
        form.addRow("Page size", self.size_combo)
        self.deid = QCheckBox("De-identify (leave out patient name, ID, birth date)")
        form.addRow("", self.deid)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save evidence report", self.path_edit.text(), "PDF (*.pdf)")
        if path:
            self.path_edit.setText(path if path.lower().endswith(".pdf") else path + ".pdf")

    def _accept(self) -> None:
        p = Path(self.path_edit.text().strip()).expanduser()
        if not p.name:
            return
        if not p.parent.is_dir():
            QMessageBox.warning(self, "Export evidence report", f"{p.parent}: no such folder")
            return
        if p.exists() and QMessageBox.question(self, "Export evidence report", f"{p.name} exists. Replace it?") \
                != QMessageBox.StandardButton.Yes:
            return
        self.accept()

    def path(self) -> str:
        p = self.path_edit.text().strip()
        return p if p.lower().endswith(".pdf") else p + ".pdf"

    def page_size(self) -> str:
        return self.size_combo.currentText()

    def deidentify(self) -> bool:
        return self.deid.isChecked()


def install_ask_audit(window) -> AskAuditController:
    return AskAuditController(window)
