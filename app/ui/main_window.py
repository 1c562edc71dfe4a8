"""The viewer's main window: series browser (left), slice view (centre), tabbed docks
(right: DICOM tags; the Ask and Audit panels add themselves with :meth:`add_dock`),
toolbar, menus, status bar, drag-and-drop and background loading.

This module holds the window's layout, state and view-following slots; its actions, menus
and toolbar are in :mod:`.main_actions`, opening studies (dialogs, drag and drop,
background loading) in :mod:`.study_opening`."""
from __future__ import annotations

import logging

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox, QWidget

from app.study.reformat import Plane
from app.study.volume import Volume

from .dialogs import ErrorsDialog
from .main_actions import PRESET_LABELS, MainActionsMixin
from .series_browser import SeriesBrowser
from .slice_view import SliceView
from .status_bar import ViewerStatusBar
from .study_opening import FILE_FILTER, StudyOpeningMixin
from .tag_browser import TagBrowser
from .theme import app_icon
from .workers import Worker

log = logging.getLogger(__name__)

__all__ = ["APP_NAME", "FILE_FILTER", "PRESET_LABELS", "MainWindow"]

APP_NAME = "CARE Viewer"


class MainWindow(StudyOpeningMixin, MainActionsMixin, QMainWindow):
    # After a load completes: every series read (the Ask panel lists these).
    series_loaded = Signal(object)  # list[Volume]
    # A volume became the displayed one. During loading this fires on the first slice,
    # while the array is still being filled in place; series_loaded follows when done.
    volume_shown = Signal(object)  # Volume | None
    load_failed = Signal(str)  # a load produced nothing: the one-line reason(s)
    # A new load is about to replace the displayed study (its first volume is coming).
    # Panels drop what belonged to the old study; a failed load never emits it.
    study_replaced = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.resize(1440, 900)

        self.view = SliceView(self)
        self.setCentralWidget(self.view)

        self.series_browser = SeriesBrowser(self)
        self.series_dock = self._make_dock("Series", self.series_browser, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.series_dock.setMinimumWidth(230)
        self.tag_browser = TagBrowser(self)
        self.tags_dock = self.add_dock("DICOM tags", self.tag_browser)
        self.tags_dock.setMinimumWidth(380)
        self.resizeDocks([self.series_dock, self.tags_dock], [250, 470], Qt.Orientation.Horizontal)

        self.status = ViewerStatusBar(self)
        self.setStatusBar(self.status)

        self._volumes: list[Volume] = []
        self.segmentations: list = []  # SegOverlay of the open study (app.study.dicom.seg_reader)
        self.documents: list = []  # DicomDocument (SR, encapsulated PDF) of the open study
        self._current: Volume | None = None
        self._worker: Worker | None = None
        self._partial_volume: Volume | None = None
        self._replacing: Worker | None = None  # the load that already emitted study_replaced
        self._error_dialog: ErrorsDialog | None = None

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._wire()
        self._update_enabled()

        # Tag browser follows the slice, debounced so fast scrolling stays smooth.
        self._tag_timer = QTimer(self)
        self._tag_timer.setSingleShot(True)
        self._tag_timer.setInterval(120)
        self._tag_timer.timeout.connect(self._update_tags)
        # Re-render at most ~8x/s while a series streams in.
        self._partial_timer = QTimer(self)
        self._partial_timer.setSingleShot(True)
        self._partial_timer.setInterval(120)
        self._partial_timer.timeout.connect(self._refresh_partial)
        self._partial_front = 0

        # Ask / Audit / History docks, report export and the box tool (app.ui.ask_audit).
        from .ask_audit import install_ask_audit

        self.care = install_ask_audit(self)
        # Flip/rotate/invert, W/L preset keys, cine and layouts (app.ui.viewer_tools).
        from .viewer_tools import install_viewer_tools

        self.tools = install_viewer_tools(self)
        from .measure_controller import install_measurements  # Measure tools and panel (after care: records with runs)

        self.measure = install_measurements(self)
        from .seg_overlays import install_seg_overlays  # DICOM SEGs of the study as overlays

        self.segs = install_seg_overlays(self)
        from .pacs_browser import install_pacs  # File > Open from PACS…, PACS Nodes…

        self.pacs = install_pacs(self)
        from .run_dicom import install_run_dicom  # the audit panel's Export DICOM… / Send to PACS…

        self.run_dicom = install_run_dicom(self)

    # =============================================================== public API ==
    @property
    def volumes(self) -> list[Volume]:
        return list(self._volumes)

    @property
    def current_volume(self) -> Volume | None:
        return self._current

    @property
    def is_loading(self) -> bool:
        return self._worker is not None

    def add_dock(
        self,
        title: str,
        widget: QWidget,
        area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
        *,
        object_name: str | None = None,
        raise_: bool = False,
    ) -> QDockWidget:
        """Add a panel as a dock; panels in the same area share it as tabs.

        Its show/hide toggle is added to View > Panels."""
        dock = self._make_dock(title, widget, area, object_name=object_name)
        others = [d for d in self.findChildren(QDockWidget) if d is not dock and self.dockWidgetArea(d) == area]
        if others:
            self.tabifyDockWidget(others[0], dock)
        if raise_ or not others:
            dock.raise_()
        if hasattr(self, "panels_menu"):
            self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def _make_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, *, object_name: str | None = None) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name or f"dock-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def show_volume(self, volume: Volume | None) -> None:
        if volume is self._current:
            return
        self._current = volume
        # The readout described a pixel of the image that was under the mouse: not of this one.
        self.status.set_cursor(None)
        self.view.set_volume(volume)
        self._sync_presets()
        title = APP_NAME if volume is None else f"{volume.description or volume.modality} — {APP_NAME}"
        self.setWindowTitle(title)
        self._update_enabled()
        self._update_tags()
        self.volume_shown.emit(volume)

    def _wire(self) -> None:
        v = self.view
        v.cursor_moved.connect(self.status.set_cursor)
        v.window_changed.connect(lambda w: self.status.set_window(w, bool(self._current and self._current.is_rgb)))
        v.zoom_changed.connect(self.status.set_zoom)
        v.slice_changed.connect(self._on_slice_changed)
        v.plane_changed.connect(self._on_plane_changed)
        self.series_browser.series_selected.connect(self._on_series_selected)
        self.status.cancel_requested.connect(self._cancel_clicked)

    def _cancel_clicked(self) -> None:
        self.cancel_loading()
        self.status.showMessage("Loading cancelled", 5000)

    def _on_series_selected(self, row: int) -> None:
        if 0 <= row < len(self._volumes):
            self.show_volume(self._volumes[row])

    def _on_slice_changed(self, k: int, n: int) -> None:
        self.status.set_slice(k, n)
        self._tag_timer.start()

    def _on_plane_changed(self, plane: str) -> None:
        a = self.act_planes.get(Plane(plane))
        if a is not None:
            a.setChecked(True)
        self.status.set_zoom(self.view.zoom)
        self._tag_timer.start()

    def _update_tags(self) -> None:
        v = self._current
        if v is None:
            self.tag_browser.set_header(None, "No study open")
            return
        if not v.headers:
            self.tag_browser.set_header(None, "No header for this series")
            return
        # One header per slice of the acquisition plane; reformats show the middle one.
        g = self.view.geometry_
        if len(v.headers) == v.num_slices and g is not None and g.slice_axis == 0:
            k = self.view.slice_index
        else:
            k = len(v.headers) // 2 if len(v.headers) == v.num_slices else 0
        k = max(0, min(k, len(v.headers) - 1))
        self.tag_browser.set_header(v.headers[k], f"Instance {k + 1} of {len(v.headers)}")

    def _update_enabled(self) -> None:
        has = self._current is not None
        planes = self.view.available_planes()
        cine = bool(self._current is not None and self._current.temporal)
        for p, a in self.act_planes.items():
            a.setEnabled(p in planes)
            base = a.toolTip().split("\n")[0]
            if cine and p not in planes:
                # Say why rather than leave a silently grey button.
                base += "\nNot available: this series is a cine (frames over time), not a stack of slices"
            a.setToolTip(base)
        for a in (self.act_zoom_in, self.act_zoom_out, self.act_fit, self.act_reset_wl):
            a.setEnabled(has)
        rgb = bool(self._current is not None and self._current.is_rgb)
        self.preset_button.setEnabled(has and not rgb)
        self.act_reset_wl.setEnabled(has and not rgb)
        if not has:
            self.status.set_window(None)
            self.status.set_zoom(None)
            self.status.set_slice(None)
            self.status.set_cursor(None)

    def _toggle_overlays(self, on: bool) -> None:
        self.view.show_overlays = bool(on)
        self.view.update()

    def _toggle_annotations(self, on: bool) -> None:
        self.view.show_annotations = bool(on)
        self.view.update()

    # ================================================================== about ==
    def _about(self) -> None:
        from app import __version__ as version  # type: ignore[attr-defined]

        QMessageBox.about(
            self,
            "About CARE Viewer",
            f"<b>CARE Viewer</b> {version}<br>Auditable, evidence-grounded medical VQA "
            "(CARE, ICLR 2026).<br><br>For research use; not a medical device.",
        )

    # ================================================================ closing ==
    def keyPressEvent(self, event) -> None:  # noqa: N802
        # Slice navigation works even when a side panel has focus but ignored the key.
        if self._current is not None and event.key() in (
            Qt.Key.Key_PageUp, Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End,
        ):
            self.view.keyPressEvent(event)
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        worker = self._worker
        self.cancel_loading()
        if worker is not None:
            worker.wait(5.0)  # the loader polls cancel between files
        self.care.shutdown()  # a running question stops at its next stage and is recorded
        super().closeEvent(event)
