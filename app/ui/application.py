"""The QApplication as CARE Viewer runs it, and its main window: one place for the names, theme
and icon, used by the app's entry (app/cli/gui_cmd.py) and by the scripts that drive the real
window for screenshots, so those show what a user sees."""
from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication


def care_application() -> QApplication:
    """The process's QApplication (created if there is none), named and themed as the app."""
    from app.ui.theme import app_icon, apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CARE Viewer")
    app.setOrganizationName("CARE")
    app.setApplicationDisplayName("CARE Viewer")
    app.setDesktopFileName("care-viewer")
    apply_theme(app)
    app.setWindowIcon(app_icon())
    return app


def open_main_window(size: tuple[int, int] | None = None):
    """A shown MainWindow; ``size`` (width, height) places it at the screen's origin at that size
    (screenshots), else the window keeps its own geometry."""
    from app.ui.main_window import MainWindow

    window = MainWindow()
    if size is not None:
        window.move(0, 0)
        window.resize(*size)
    window.show()
    return window
