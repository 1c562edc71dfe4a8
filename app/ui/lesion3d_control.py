"""The box tool's "3-D" option: a drawn box becomes a 3-D lesion (app.pipeline.segmentation.propagate)
on a worker thread, with progress per slice and cancel between slices; the result is one
3-D overlay on every slice it covers and the :class:`~app.ui.lesion3d_panel.Lesion3DPanel`
(figures, per-slice confidence strip, trim first/last, accept, discard).

Accepting keeps the lesion on the view and emits ``accepted``; it is not written to the audit
trail (a run's record is per slice; nothing here claims otherwise)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolButton

from app.study.display_frame import display_frame
from app.study.reformat import native_plane
from app.study.volume import Volume, Window

from .lesion3d_panel import Lesion3DPanel
from .theme import icon
from .workers import Worker

if TYPE_CHECKING:
    from app.pipeline.segmentation.propagate import Lesion3D

    from .run_worker import PipelineCache

log = logging.getLogger(__name__)

OVERLAY = "lesion3d"
Box = tuple[int, int, int, int]


def propagate_task(pipelines: "PipelineCache", profile: str, volume: Volume, slice_index: int, window: Window,
                   box: Box, ctx) -> "Lesion3D":
    """Worker-thread body: the profile's box segmenter through its SegmentationService (the
    engine's embedding key, the profile's judging); every slice reported, cancel between slices."""
    from app.pipeline.segmentation.propagate import propagate_box
    from app.pipeline.types import PipelineError

    pipe = pipelines.get(profile)
    with pipelines.lock(profile):
        service = pipe.segmentation()
        if service.box_route() is None:
            raise PipelineError(f"profile '{profile}' has no box-prompted segmenter")
        seen = [0]

        def progress(s) -> None:
            seen[0] += 1
            ctx.partial(s)
            ctx.progress(seen[0], 0, f"slice {s.index + 1}")

        return propagate_box(service, volume, display_frame(volume), slice_index, box, window=window,
                             progress=progress, cancel=ctx.cancelled)


class Lesion3DController(QObject):
    started = Signal(object)  # the Worker, just started
    finished = Signal(object)  # Lesion3D, or None (failed / cancelled / empty)
    accepted = Signal(object)  # Lesion3D

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host, self.window, self.view = host, host.window, host.view
        self.worker: Worker | None = None
        self.lesion: "Lesion3D | None" = None
        self.volume: Volume | None = None
        self.panel = Lesion3DPanel(self.window)
        self.dock = self.window.add_dock("3-D lesion", self.panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                         object_name="dock-lesion3d")
        self.act_3d = QAction(icon("mdi6.cube-outline"), "3-D Box (follow the structure through the slices)",
                              self.window)
        self.act_3d.setCheckable(True)
        self.act_3d.setIconText("3-D")  # the panel's tool button: the box tool's 3-D option
        self.act_3d.setShortcut(QKeySequence("Shift+B"))
        self.act_3d.setToolTip("A drawn box is segmented, then propagated slice by slice to a 3-D lesion  (Shift+B)")
        self.act_3d.toggled.connect(self._on_toggled)
        self.window.addAction(self.act_3d)
        button = QToolButton(self.panel)
        button.setDefaultAction(self.act_3d)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.mode_button = button
        self.panel.mode_row.addWidget(button)
        self.panel.mode_row.addStretch(1)
        tb = getattr(self.window, "toolbar", None)
        if tb is not None:
            tb.addAction(self.act_3d)
        menus = {a.text().replace("&", ""): a.menu() for a in self.window.menuBar().actions() if a.menu() is not None}
        if menus.get("Tools") is not None:
            menus["Tools"].addAction(self.act_3d)
        p = self.panel
        p.slice_clicked.connect(self.go_to)
        p.trim_first_requested.connect(lambda: self.trim(first=True))
        p.trim_last_requested.connect(lambda: self.trim(first=False))
        p.accept_requested.connect(self.accept)
        p.discard_requested.connect(self.discard)
        p.cancel_requested.connect(self.cancel)
        self.view.slice_changed.connect(self._on_slice)
        self.window.study_replaced.connect(self.discard)

    # ----- mode ------------------------------------------------------------------------
    def wants(self) -> bool:
        return self.act_3d.isChecked()

    def _on_toggled(self, on: bool) -> None:
        if on:
            self.host.act_draw.setChecked(True)  # 3-D is an option of the box tool

    # ----- run -------------------------------------------------------------------------
    def start(self, slice_index: int, box: Box, profile: str, window: Window) -> Worker | None:
        v = self.window.current_volume
        if v is None or self.worker is not None:
            return None
        self.discard()
        self.volume = v
        self.dock.show()
        self.dock.raise_()
        self.panel.show_running(v.num_slices, slice_index)
        self.window.status.showMessage(f"Propagating the box through the slices with {profile}'s box segmenter\u2026")
        pipelines = self.host.pipelines
        worker = Worker(lambda ctx: propagate_task(pipelines, profile, v, slice_index, window, box, ctx),
                        name="3-D propagation")
        self.worker = worker
        self.host.draw_tool.show_segmenting(slice_index, box)
        worker.signals.partial.connect(self.panel.show_progress)
        worker.signals.finished.connect(self._on_finished)
        worker.signals.errored.connect(lambda msg: self._end(None, msg))
        worker.signals.cancelled.connect(lambda: self._end(None, "3-D propagation cancelled; nothing kept"))
        worker.start()
        self.started.emit(worker)
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()  # the task stops before the next slice

    def _on_finished(self, lesion: "Lesion3D") -> None:
        if self.volume is None or self.window.current_volume is not self.volume:
            self._end(None, "The series changed during the 3-D propagation; its result was not kept")
            return
        if not lesion.size.voxels:
            self._end(None, f"The box on slice {lesion.seed + 1} gave an empty mask: nothing to propagate")
            return
        self._end(lesion, "")

    def _end(self, lesion: "Lesion3D | None", message: str) -> None:
        self.worker = None
        self.host.draw_tool.end_segmenting()
        if lesion is None:
            self.panel.show_message(message)
            self.window.status.showMessage(message, 10000)
        else:
            self._show(lesion)
            self.window.status.showMessage(self._status(lesion), 10000)
        self.finished.emit(lesion)

    def _status(self, lesion: "Lesion3D") -> str:
        s = lesion.size
        size = f"{s.volume_ml:.2f} mL" if s.calibrated else f"{s.voxels} voxels"
        return f"3-D lesion: slices {lesion.first + 1}\u2013{lesion.last + 1}, {size}"

    # ----- the result ------------------------------------------------------------------
    def _show(self, lesion: "Lesion3D", accepted: bool = False) -> None:
        from app.audit.report.composite import mask_colour

        self.lesion = lesion
        ov = self.view.overlays
        if OVERLAY in ov:
            ov.remove(OVERLAY)
        if self.volume is not None and self.window.current_volume is self.volume:
            ov.add(OVERLAY, lesion.mask, mask_colour(3), 0.45)
        self.panel.show_lesion(lesion, self.volume.num_slices if self.volume is not None else 0, accepted=accepted)
        self._on_slice()

    def go_to(self, k: int) -> None:
        v = self.window.current_volume
        if v is not None:
            self.view.set_slice(k, plane=native_plane(v))

    def _on_slice(self, *_args) -> None:
        v = self.window.current_volume
        if v is not None:
            self.panel.strip.set_current(self.view.slice_index_for(native_plane(v)))

    def trim(self, *, first: bool) -> None:
        les = self.lesion
        if les is None or self.volume is None or self.panel.accepted:
            return
        lo, hi = (les.first + 1, les.last) if first else (les.first, les.last - 1)
        if not lo <= les.seed <= hi:
            return
        self._show(les.trimmed(lo, hi, self.volume))

    def accept(self) -> None:
        if self.lesion is None:
            return
        self._show(self.lesion, accepted=True)
        self.window.status.showMessage(f"Accepted \u2014 {self._status(self.lesion)}", 10000)
        self.accepted.emit(self.lesion)

    def discard(self) -> None:
        if OVERLAY in self.view.overlays:
            self.view.overlays.remove(OVERLAY)
        self.lesion = None
        self.panel.show_empty()

    def shutdown(self, timeout: float = 10.0) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(timeout)
