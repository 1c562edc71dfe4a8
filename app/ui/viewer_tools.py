"""The viewer tools' actions, menus and toolbar: flip/rotate/invert/reset of the view,
window presets on F2-F6, cine play/pause with its rate control, and the 1x1 / 1x2 / 2x2
layouts (installed on the :class:`~app.ui.main_window.MainWindow` by
:func:`install_viewer_tools`; the logic lives in :mod:`.view_tools`, :mod:`.cine` and
:mod:`.layouts`)."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from app.study.display import CT_PRESETS
from app.study.view_transform import models_view_note

from .cine import CineControls, CineController
from .layouts import Layout, ViewLayout
from .theme import icon

# Window presets on the keyboard (CT only: the presets are Hounsfield windows).
PRESET_KEYS: tuple[tuple[str, str], ...] = (
    ("lung", "F2"), ("mediastinum", "F3"), ("abdomen", "F4"), ("bone", "F5"), ("brain", "F6"),
)
LAYOUT_KEYS = {Layout.SINGLE: "Ctrl+1", Layout.TWO: "Ctrl+2", Layout.FOUR: "Ctrl+4"}
LAYOUT_TEXT = {Layout.SINGLE: "1 \u00d7 1 (one view)", Layout.TWO: "1 \u00d7 2 (two planes)",
               Layout.FOUR: "2 \u00d7 2 (three planes + acquisition plane)"}


@dataclass
class ViewerTools:
    layouts: ViewLayout
    cine: CineController
    cine_controls: CineControls
    actions: dict[str, QAction]
    preset_actions: dict[str, QAction]
    layout_actions: dict[Layout, QAction]


def _action(window, text: str, key: str | None, slot, *, icon_name: str | None = None,
            checkable: bool = False, tip: str = "", within: QWidget | None = None) -> QAction:
    """``within``: the shortcut works only while focus is in that widget (Space must stay a
    button's key elsewhere); otherwise window-wide."""
    a = QAction(text, window)
    if icon_name:
        a.setIcon(icon(icon_name))
    if key:
        a.setShortcut(QKeySequence(key))
    a.setCheckable(checkable)
    keys = QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText) if key else ""
    a.setToolTip((tip or text) + (f"  ({keys})" if keys else ""))
    a.triggered.connect(slot)
    if within is not None:
        a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        within.addAction(a)
    else:
        window.addAction(a)  # window-wide shortcut
    return a


def install_viewer_tools(window) -> ViewerTools:
    view = window.view
    layouts = ViewLayout(window, view)
    cine = CineController(view, window)
    controls = CineControls(cine, window)

    acts: dict[str, QAction] = {}
    acts["flip_h"] = _action(window, "Flip &Left-Right", "H", view.flip_horizontal, icon_name="mdi6.flip-horizontal")
    acts["flip_v"] = _action(window, "Flip &Top-Bottom", "Shift+H", view.flip_vertical, icon_name="mdi6.flip-vertical")
    acts["rot_cw"] = _action(window, "Rotate 90\u00b0 &Clockwise", "]", view.rotate_clockwise, icon_name="mdi6.rotate-right")
    acts["rot_ccw"] = _action(window, "Rotate 90\u00b0 C&ounter-Clockwise", "[", view.rotate_counter_clockwise,
                              icon_name="mdi6.rotate-left")
    acts["invert"] = _action(window, "&Invert Grey Scale", "I", lambda _=False: _invert(window),
                             icon_name="mdi6.invert-colors", checkable=True,
                             tip="Invert the displayed grey scale (display only: values and the models' input unchanged)")
    acts["reset_view"] = _action(window, "Reset &View", "Shift+R", view.reset_view, icon_name="mdi6.backup-restore",
                                 tip="Standard orientation, no inversion, the initial window, fitted")
    acts["cine"] = _action(window, "&Play / Pause Cine", "Space", lambda _=False: _toggle_cine(window, cine),
                           icon_name="mdi6.play-pause", checkable=True,
                           tip="Play the frames (slices) of the view in a loop at the rate shown",
                           within=layouts.container)

    presets: dict[str, QAction] = {}
    for name, key in PRESET_KEYS:
        w = CT_PRESETS[name]
        presets[name] = _action(window, f"{name.capitalize()} Window (CT)", key,
                                lambda _=False, n=name: apply_key_preset(window, n),
                                tip=f"{name.capitalize()} window, C {w.center:g} / W {w.width:g} (CT only)")

    group = QActionGroup(window)
    layout_actions: dict[Layout, QAction] = {}
    for lay in Layout:
        a = _action(window, f"Layout {LAYOUT_TEXT[lay]}", LAYOUT_KEYS[lay], lambda _=False, l=lay: layouts.set_layout(l),
                    icon_name={Layout.SINGLE: "mdi6.square-outline", Layout.TWO: "mdi6.view-split-vertical",
                               Layout.FOUR: "mdi6.view-grid-outline"}[lay], checkable=True)
        group.addAction(a)
        layout_actions[lay] = a
    layout_actions[Layout.SINGLE].setChecked(True)
    layouts.layout_changed.connect(lambda v: layout_actions[Layout(v)].setChecked(True))

    tools = ViewerTools(layouts, cine, controls, acts, presets, layout_actions)
    _build_menus(window, tools)
    _build_toolbar(window, tools)
    _wire(window, tools)
    return tools


def _invert(window) -> None:
    view = window.view
    if not view.can_invert():
        window.tools.actions["invert"].setChecked(False)
        window.status.showMessage("Invert needs a greyscale image" if view.volume is not None else "No study open", 5000)
        return
    view.toggle_invert()


def _toggle_cine(window, cine: CineController) -> None:
    if cine.playing:
        cine.pause()
    elif not cine.play():
        window.status.showMessage("Nothing to play: the view has a single frame" if window.view.volume is not None
                                  else "No study open", 5000)
    else:
        window.status.showMessage(f"Cine at {cine.fps:g} fps, {cine.rate_source}", 5000)
    window.tools.actions["cine"].setChecked(cine.playing)


def apply_key_preset(window, name: str) -> bool:
    """A CT window preset from the keyboard; on anything but a greyscale CT a status message
    says why nothing changed. Returns whether the window was set."""
    v = window.view.volume
    if v is None:
        window.status.showMessage("No study open", 4000)
        return False
    if not v.hu_values:
        window.status.showMessage(f"The {name} preset is a CT (Hounsfield) window; this series is {v.modality}", 6000)
        return False
    window.view.apply_preset(name)
    w = window.view.window
    window.status.showMessage(f"{name.capitalize()} window: C {w.center:g} / W {w.width:g}", 4000)
    return True


def _build_menus(window, t: ViewerTools) -> None:
    menus = {a.text().replace("&", ""): a.menu() for a in window.menuBar().actions() if a.menu() is not None}
    view_menu: QMenu | None = menus.get("View")
    if view_menu is None:
        return
    first = view_menu.actions()[0] if view_menu.actions() else None
    m = QMenu("&Layout", window)
    m.addActions(list(t.layout_actions.values()))
    view_menu.insertMenu(first, m)
    view_menu.insertSeparator(first)
    o = view_menu.addMenu("Orien&tation")
    o.addActions([t.actions[k] for k in ("flip_h", "flip_v", "rot_cw", "rot_ccw")])
    view_menu.addAction(t.actions["invert"])
    view_menu.addAction(t.actions["reset_view"])
    view_menu.addSeparator()
    view_menu.addAction(t.actions["cine"])
    window.preset_menu.aboutToShow.connect(lambda: _label_preset_keys(window))


def _label_preset_keys(window) -> None:
    """Show F2-F6 next to the presets in the W/L menu (rebuilt per study by _sync_presets);
    the keys themselves are the window's preset actions, so no shortcut is bound twice."""
    keys = dict(PRESET_KEYS)
    for a in window.preset_menu.actions():
        name = a.data()
        if name in keys and "\t" not in a.text():
            a.setText(f"{a.text()}\t{keys[name]}")


def _build_toolbar(window, t: ViewerTools) -> None:
    tb = window.addToolBar("View tools")
    tb.setObjectName("toolbar-view-tools")
    tb.setMovable(False)
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    tb.setIconSize(window.toolbar.iconSize())
    tb.addActions(list(t.layout_actions.values()))
    tb.addSeparator()
    tb.addActions([t.actions[k] for k in ("flip_h", "flip_v", "rot_ccw", "rot_cw", "invert", "reset_view")])
    tb.addSeparator()
    tb.addAction(t.actions["cine"])
    tb.addWidget(t.cine_controls)
    window.view_toolbar = tb


def _wire(window, t: ViewerTools) -> None:
    view = window.view
    t.cine.playing_changed.connect(t.actions["cine"].setChecked)

    def view_state() -> None:
        t.actions["invert"].setChecked(view.invert_active)
        care = getattr(window, "care", None)
        if care is not None:
            care.ask.set_view_note(models_view_note(view.view_transform, view.invert_active))

    view.view_changed.connect(view_state)
    view.volume_changed.connect(lambda _v: view_state())
    view_state()

    def enabled(_v=None) -> None:
        has = view.volume is not None
        for a in t.actions.values():
            a.setEnabled(has)
        t.actions["invert"].setEnabled(view.can_invert())
        t.cine_controls.setEnabled(has)

    view.volume_changed.connect(enabled)
    enabled()
