"""The main window's actions, menus, toolbar and window-preset menu (part of
:class:`~app.ui.main_window.MainWindow`; panels add their own with :meth:`addAction`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QToolButton

from app.study.reformat import Plane

from .dialogs import ShortcutsDialog
from .slice_view import DragMode, window_presets
from .theme import icon

if TYPE_CHECKING:
    from .main_window import MainWindow

PRESET_LABELS = {
    "default": "Default (from file)",
    "lung": "Lung  (C -600 / W 1500)",
    "mediastinum": "Mediastinum  (C 50 / W 350)",
    "abdomen": "Abdomen  (C 40 / W 400)",
    "bone": "Bone  (C 400 / W 1800)",
    "brain": "Brain  (C 40 / W 80)",
    "auto": "Auto (from histogram)",
}


class MainActionsMixin:
    """Actions, menus and toolbar of :class:`~app.ui.main_window.MainWindow`."""

    def _action(self: "MainWindow", text: str, icon_name: str | None = None, shortcut=None, slot=None, checkable=False, tip: str = "") -> QAction:
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

    def _build_actions(self: "MainWindow") -> None:
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

    def _build_menus(self: "MainWindow") -> None:
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

    def _build_toolbar(self: "MainWindow") -> None:
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

    def _sync_presets(self: "MainWindow") -> None:
        self.preset_menu.clear()
        for name in window_presets(self._current):
            a = self.preset_menu.addAction(PRESET_LABELS.get(name, name.capitalize()))
            a.setData(name)
            a.triggered.connect(lambda _=False, n=name: self.view.apply_preset(n))
        self.preset_menu.setEnabled(bool(self.preset_menu.actions()))
