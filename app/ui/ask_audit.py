"""Ask-and-audit: the controller joining the viewer, the Ask/Audit/History panels, the
pipeline worker and the audit trail.

``install_ask_audit(window)`` adds the three docks, the File > Export evidence report
and Tools > Draw box actions, and keeps everything in step with the displayed series:

- Ask runs CARE on the *displayed* acquisition-plane slice with the *displayed* window
  (what the radiologist sees is what the models see), on a worker thread.
- Every run is committed to the audit store at start and finished whatever the outcome.
- Clinician edits (discard a mask, draw a box) are appended as overrides of the run; the
  original record never changes. "Re-ask with edited evidence" is a new run whose
  ``parent_run_id`` names the first.
- A box drawn on a slice that has no run yet is kept for the next question on that slice.
- The audit trail is only ever touched off the GUI thread (:mod:`app.ui.audit_worker`).

The controller is one object; its parts live in modules of their own: runs
(:mod:`.run_control`), clinician edits and boxes (:mod:`.clinician_edits`), the history
(:mod:`.run_history`) and the PDF report (:mod:`.report_export`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence

from app.audit.service import AuditService
from app.study.edge_labels import plane_name
from app.study.reformat import native_plane
from app.study.volume import Volume

from .ask_panel import AskPanel
from .audit_panel import AuditPanel
from .audit_worker import AuditWorker
from .clinician_edits import PENDING_PREFIX, ClinicianEditsMixin
from .history_panel import HistoryPanel
from .lesion3d_control import Lesion3DController
from .override_tools import BoxDrawTool
from .report_export import ExportReportDialog, ReportExportMixin, default_report_path
from .run_control import RunControlMixin
from .run_history import RunHistoryMixin
from .run_worker import PipelineCache, RunHandle
from .theme import icon
from .workers import Worker

if TYPE_CHECKING:
    from app.audit.store import AuditStore

log = logging.getLogger(__name__)

__all__ = ["AskAuditController", "ExportReportDialog", "PENDING_PREFIX", "default_report_path", "install_ask_audit"]


class AskAuditController(RunControlMixin, ClinicianEditsMixin, RunHistoryMixin, ReportExportMixin, QObject):
    run_finished = Signal(object)  # RunOutcome
    box_segmented = Signal(object)  # BoxOutcome
    report_written = Signal(str)  # path
    report_failed = Signal(str)
    history_changed = Signal()
    run_started = Signal(object)  # RunHandle, just before it starts
    run_reopened = Signal(str)  # run id: a stored run is shown again

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.view = window.view
        self.pipelines = PipelineCache()
        # Every audit-store call goes through this queue, off the GUI thread.
        self.audit_io = AuditWorker(AuditService(), self)
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
        self.lesion3d = Lesion3DController(self)  # the box tool's "3-D" option and its dock
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
        # The Ask panel holds the question, the target with Ask/Cancel (these two rows never
        # scroll), mode, models, the weights line, the stage strip, the status and a run's
        # message (on a CPU, the "No GPU" warning after every run): 360 px shows them all, so
        # the mode and models stay in sight after a run (at 300 the warning scrolled them away).
        w.resizeDocks([self.ask_dock, self.audit_dock], [360, 540], Qt.Orientation.Vertical)

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
        w.study_replaced.connect(self._on_study_replaced)
        w.series_loaded.connect(lambda _v: (self._update_target(), self.refresh_history()))
        v.slice_changed.connect(lambda *_: self._update_target())
        v.plane_changed.connect(lambda *_: self._update_target())
        v.window_changed.connect(lambda *_: self._update_target())

    # ================================================================== storage ==
    @property
    def store(self) -> "AuditStore":
        """The audit store, opened on first use (tests and scripts; the GUI uses ``audit_io``)."""
        return self.audit_io.service.store()

    # =================================================================== target ==
    def run_target(self) -> tuple[Volume, int] | None:
        v = self.window.current_volume
        if v is None or self.window.is_loading or v.provisional:
            return None
        return v, self.view.slice_index_for(native_plane(v))

    def _update_target(self) -> None:
        v = self.window.current_volume
        if v is None:
            self.ask.set_target("No study open", False)
            return
        if self.window.is_loading or v.provisional:
            self.ask.set_target("Loading the series\u2026 (Ask once it is complete)", False)
            return
        plane = native_plane(v)
        k = self.view.slice_index_for(plane)
        # A radiograph or an ultrasound frame is a "projection" / "image", never "axial".
        name = plane_name(v, plane).lower()
        text = f"Slice {k + 1}/{v.num_slices} ({name})"
        if not v.is_rgb:
            win = self.view.window
            text += f" \u00b7 W {win.width:.0f} L {win.center:.0f}"
        if self.view.plane != plane:
            text += f" \u2014 the view shows {plane_name(v, self.view.plane).lower()}; CARE reads the {name} slice"
        n = len(self.unused_boxes(v, k))
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

    def _on_study_replaced(self) -> None:
        """Another study is opening: nothing of the old one may stay on the panels (its run
        in the Audit panel, its question in Ask, boxes drawn on its slices)."""
        self.draw_tool.set_active(False)
        self.audit.show_record(None)
        self.current_run_id = None
        self.current_persisted = False
        self.current_patient = None
        self.pending.clear()
        self.ask.set_question("")
        self.ask.clear_run_state()
        self._update_actions()

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
        self.lesion3d.shutdown(timeout)
        self.audit_io.shutdown(timeout)  # queued overrides still reach the database


def install_ask_audit(window) -> AskAuditController:
    return AskAuditController(window)
