"""The viewer's main window: series browser (left), slice view (centre), tabbed docks
(right: DICOM tags; the Ask and Audit panels add themselves with :meth:`add_dock`),
toolbar, menus, status bar, drag-and-drop and background loading."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QToolButton,
    QWidget,
)

from app.study.reformat import Plane, native_plane
from app.study.volume import LoadResult, Volume

from .dialogs import ErrorsDialog, ShortcutsDialog
from .loading import load_worker, sample_path
from .series_browser import SeriesBrowser
from .slice_view import DragMode, SliceView, window_presets
from .status_bar import ViewerStatusBar
from .tag_browser import TagBrowser
from .theme import app_icon, icon
from .workers import Worker

log = logging.getLogger(__name__)

APP_NAME = "CARE Viewer"
FILE_FILTER = (
    "Medical images (*.dcm *.DCM *.ima *.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;"
    "All files (*)"
)
PRESET_LABELS = {
    "default": "Default (from file)",
    "lung": "Lung  (C -600 / W 1500)",
    "mediastinum": "Mediastinum  (C 50 / W 350)",
    "abdomen": "Abdomen  (C 40 / W 400)",
    "bone": "Bone  (C 400 / W 1800)",
    "brain": "Brain  (C 40 / W 80)",
    "auto": "Auto (from histogram)",
}


class MainWindow(QMainWindow):
    # After a load completes: every series read (the Ask panel lists these).
    series_loaded = Signal(object)  # list[Volume]
    # A volume became the displayed one. During loading this fires on the first slice,
    # while the array is still being filled in place; series_loaded follows when done.
    volume_shown = Signal(object)  # Volume | None
    load_failed = Signal(str)  # a load produced nothing: the one-line reason(s)

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
        self._current: Volume | None = None
        self._worker: Worker | None = None
        self._partial_volume: Volume | None = None
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

    def open_paths(self, paths: Sequence[str | Path]) -> None:
        """Open files and/or folders in the background (replaces the current study)."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        self.cancel_loading()
        self._partial_volume = None
        self._partial_front = 0
        label = Path(paths[0]).name + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        self.status.begin_task(f"Opening {label}…")
        self.status.showMessage(f"Opening {label}…")
        if self._current is None:
            self.view.set_message(f"Opening {label}…")
        worker = load_worker(paths)
        self._worker = worker
        s = worker.signals
        s.progress.connect(lambda d, t, m, w=worker: self._on_progress(w, d, t, m))
        s.partial.connect(lambda payload, w=worker: self._on_partial(w, payload))
        s.finished.connect(lambda result, w=worker: self._on_loaded(w, result))
        s.errored.connect(lambda msg, w=worker: self._on_load_error(w, msg))
        s.cancelled.connect(lambda w=worker: self._on_cancelled(w))
        worker.start()  # only now: a fast task must not emit before we listen

    def open_sample(self) -> None:
        try:
            path = sample_path()
        except Exception as exc:  # noqa: BLE001 - missing sample must not take the app down
            self._show_failure(f"The sample study is not available: {exc}")
            return
        self.open_paths([path])

    def cancel_loading(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
            self.status.end_task()

    def show_volume(self, volume: Volume | None) -> None:
        if volume is self._current:
            return
        self._current = volume
        self.view.set_volume(volume)
        self._sync_presets()
        title = APP_NAME if volume is None else f"{volume.description or volume.modality} — {APP_NAME}"
        self.setWindowTitle(title)
        self._update_enabled()
        self._update_tags()
        self.volume_shown.emit(volume)

    # ================================================================ loading ==
    def _on_progress(self, worker: Worker, done: int, total: int, msg: str) -> None:
        if worker is not self._worker:
            return
        self.status.task_progress(done, total, msg)
        if self._partial_volume is not None and not self._partial_timer.isActive():
            self._partial_timer.start()

    def _on_partial(self, worker: Worker, payload) -> None:
        if worker is not self._worker:
            return
        volume, done, total = payload
        self._partial_front = max(0, int(done) - 1)
        if self._partial_volume is not volume:
            self._partial_volume = volume
            self.show_volume(volume)
            self.view.set_slice(min(self._partial_front, volume.num_slices // 2))
        if not self._partial_timer.isActive():
            self._partial_timer.start()

    def _refresh_partial(self) -> None:
        v = self._partial_volume
        if v is None or v is not self._current:
            return
        follow = None
        if not self.view.user_navigated:
            # Follow the fill front up to the middle slice, where a finished series opens.
            follow = min(self._partial_front, v.num_slices // 2)
        self.view.refresh_data(follow_slice=follow)

    def _on_loaded(self, worker: Worker, result: LoadResult) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.status.end_task()
        self._partial_timer.stop()
        self._volumes = list(result.volumes)
        current_index = 0
        if self._partial_volume is not None and self._partial_volume in self._volumes:
            current_index = self._volumes.index(self._partial_volume)
        self._partial_volume = None
        self.series_browser.set_volumes(self._volumes, current_index)
        if self._volumes:
            shown = self._volumes[current_index]
            if shown is self._current:
                self.view.loading_finished()
                if not self.view.user_navigated:
                    self.view.set_slice(shown.num_slices // 2, plane=native_plane(shown))
            else:
                self.show_volume(shown)
            n = len(self._volumes)
            self.status.showMessage(f"Opened {n} series" + (f", {len(result.errors)} item(s) skipped" if result.errors else ""), 8000)
            self.series_loaded.emit(self.volumes)
            self.view.setFocus()
        else:
            self.show_volume(None)
        if result.errors:
            self._show_errors(result)

    def _on_load_error(self, worker: Worker, message: str) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.status.end_task()
        self._show_failure(message)

    def _on_cancelled(self, worker: Worker) -> None:
        self.status.showMessage("Loading cancelled", 5000)
        if self._current is None:
            self.view.set_message("")

    def _show_errors(self, result: LoadResult) -> None:
        lines = [str(e) for e in result.errors]
        if not result.volumes:
            text = "Could not open " + ("\n".join(lines) if len(lines) <= 6 else "\n".join(lines[:6]) + f"\n… and {len(lines) - 6} more")
            self._show_failure(text)
        else:
            self.status.showMessage(f"{len(lines)} item(s) could not be opened (see list)", 10000)
        if len(lines) > 1 or result.volumes:
            if self._error_dialog is not None:
                self._error_dialog.close()
            self._error_dialog = ErrorsDialog(result.errors, self)
            self._error_dialog.destroyed.connect(lambda *_: setattr(self, "_error_dialog", None))
            self._error_dialog.show()

    def _show_failure(self, text: str) -> None:
        """A load that produced nothing: the reason goes into the viewport and status bar."""
        log.warning("%s", text)
        self.status.showMessage(text.splitlines()[0], 15000)
        if self._current is None:
            self.view.set_message(text, error=True)
        self.load_failed.emit(text)

    # ================================================================ actions ==
    def _action(self, text: str, icon_name: str | None = None, shortcut=None, slot=None, checkable=False, tip: str = "") -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.setCheckable(checkable)
        if tip or shortcut is not None:
            keys = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText) if shortcut is not None else ""
            a.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f"  ({keys})" if keys else ""))
        if slot is not None:
            a.triggered.connect(slot)
        self.addAction(a)  # shortcuts work whatever has focus in the window
        return a

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        v = self.view
        self.act_open_file = self._action("&Open File…", "mdi6.file-outline", K.Open, self._open_file_dialog, tip="Open file(s)")
        self.act_open_folder = self._action("Open &Folder…", "mdi6.folder-open-outline", "Ctrl+Shift+O", self._open_folder_dialog, tip="Open a DICOM folder")
        self.act_open_sample = self._action("Open &Sample Study", "mdi6.flask-outline", None, self.open_sample, tip="Open the bundled sample CT")
        self.act_quit = self._action("&Quit", "mdi6.exit-to-app", "Ctrl+Q", self.close)

        self.act_zoom_in = self._action("Zoom &In", "mdi6.magnify-plus-outline", "+", v.zoom_in)
        self.act_zoom_out = self._action("Zoom &Out", "mdi6.magnify-minus-outline", "-", v.zoom_out)
        self.act_fit = self._action("&Fit to Window", "mdi6.fit-to-screen-outline", "F", v.fit)
        self.act_reset_wl = self._action("&Reset Window/Level", "mdi6.restore", "R", v.reset_window)
        self.act_overlays = self._action("Show &Overlays", "mdi6.layers-outline", "O", self._toggle_overlays, checkable=True)
        self.act_overlays.setChecked(True)
        self.act_annotations = self._action("Show &Annotations", "mdi6.information-outline", None, self._toggle_annotations, checkable=True)
        self.act_annotations.setChecked(True)

        self.plane_group = QActionGroup(self)
        self.act_planes: dict[Plane, QAction] = {}
        for plane, key, ic in (
            (Plane.AXIAL, "1", "mdi6.alpha-a-box-outline"),
            (Plane.CORONAL, "2", "mdi6.alpha-c-box-outline"),
            (Plane.SAGITTAL, "3", "mdi6.alpha-s-box-outline"),
        ):
            a = self._action(plane.value.capitalize(), ic, key, lambda _=False, p=plane: v.set_plane(p), checkable=True)
            self.plane_group.addAction(a)
            self.act_planes[plane] = a
        self.act_planes[Plane.AXIAL].setChecked(True)

        self.tool_group = QActionGroup(self)
        self.act_tools: dict[str, QAction] = {}
        for mode, text, ic, tip in (
            (DragMode.PAN, "Pan", "mdi6.cursor-move", "Left-drag pans"),
            (DragMode.WINDOW, "Window/Level", "mdi6.contrast-circle", "Left-drag sets window/level (right-drag always does)"),
            (DragMode.ZOOM, "Zoom", "mdi6.magnify", "Left-drag up/down zooms"),
        ):
            a = self._action(text, ic, None, lambda _=False, m=mode: setattr(v, "drag_mode", m), checkable=True, tip=tip)
            self.tool_group.addAction(a)
            self.act_tools[mode] = a
        self.act_tools[v.drag_mode].setChecked(True)

        self.act_shortcuts = self._action("&Keyboard and Mouse…", "mdi6.keyboard-outline", None, lambda: ShortcutsDialog(self).exec())
        self.act_about = self._action("&About CARE Viewer", "mdi6.information-outline", None, self._about)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addActions([self.act_open_file, self.act_open_folder, self.act_open_sample])
        m.addSeparator()
        m.addAction(self.act_quit)

        m = mb.addMenu("&View")
        m.addActions(list(self.act_planes.values()))
        m.addSeparator()
        m.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit])
        m.addSeparator()
        self.preset_menu = QMenu("Window &Presets", self)
        self.preset_menu.setIcon(icon("mdi6.tune-vertical"))
        m.addMenu(self.preset_menu)
        m.addAction(self.act_reset_wl)
        m.addSeparator()
        m.addActions([self.act_overlays, self.act_annotations])
        m.addSeparator()
        self.panels_menu = m.addMenu("&Panels")
        for d in (self.series_dock, self.tags_dock):
            self.panels_menu.addAction(d.toggleViewAction())

        m = mb.addMenu("&Tools")
        m.addActions(list(self.act_tools.values()))

        m = mb.addMenu("&Help")
        m.addActions([self.act_shortcuts, self.act_about])

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("toolbar-main")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.setIconSize(QSize(22, 22))
        tb.addActions([self.act_open_file, self.act_open_folder, self.act_open_sample])
        tb.addSeparator()
        tb.addActions(list(self.act_planes.values()))
        tb.addSeparator()
        tb.addActions(list(self.act_tools.values()))
        tb.addSeparator()
        tb.addActions([self.act_zoom_in, self.act_zoom_out, self.act_fit])
        tb.addSeparator()
        self.preset_button = QToolButton(self)
        self.preset_button.setIcon(icon("mdi6.tune-vertical"))
        self.preset_button.setText("Presets")
        self.preset_button.setToolTip("Window/level presets")
        self.preset_button.setMenu(self.preset_menu)
        self.preset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        tb.addWidget(self.preset_button)
        tb.addAction(self.act_reset_wl)
        tb.addSeparator()
        tb.addAction(self.act_overlays)
        self.toolbar = tb

    def _sync_presets(self) -> None:
        self.preset_menu.clear()
        for name in window_presets(self._current):
            a = self.preset_menu.addAction(PRESET_LABELS.get(name, name.capitalize()))
            a.setData(name)
            a.triggered.connect(lambda _=False, n=name: self.view.apply_preset(n))
        self.preset_menu.setEnabled(bool(self.preset_menu.actions()))

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
        for p, a in self.act_planes.items():
            a.setEnabled(p in planes)
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

    # ================================================================ dialogs ==
    def _settings(self) -> QSettings:
        return QSettings("CARE", "CARE Viewer")

    def _open_file_dialog(self) -> None:
        start = str(self._settings().value("last_dir", str(Path.home())))
        files, _ = QFileDialog.getOpenFileNames(self, "Open image files", start, FILE_FILTER)
        if files:
            self._settings().setValue("last_dir", str(Path(files[0]).parent))
            self.open_paths(files)

    def _open_folder_dialog(self) -> None:
        start = str(self._settings().value("last_dir", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM folder", start)
        if folder:
            self._settings().setValue("last_dir", folder)
            self.open_paths([folder])

    def _about(self) -> None:
        from app import __version__ as version  # type: ignore[attr-defined]

        QMessageBox.about(
            self,
            "About CARE Viewer",
            f"<b>CARE Viewer</b> {version}<br>Auditable, evidence-grounded medical VQA "
            "(CARE, ICLR 2026).<br><br>For research use; not a medical device.",
        )

    # ========================================================== drag and drop ==
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = _local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

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


def _local_paths(mime) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

