"""Dark theme, icons and resource paths."""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtGui import QColor, QIcon, QPalette
from PySide6.QtWidgets import QApplication

ICON_COLOR = "#cfd6de"
ICON_COLOR_ACTIVE = "#4fc3f7"
ICON_COLOR_DISABLED = "#5a626d"


def resources_dir() -> Path:
    """The repo's resources/ (or the PyInstaller bundle's copy of it)."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and (Path(bundle) / "resources").is_dir():
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def app_icon() -> QIcon:
    return QIcon(str(resources_dir() / "icons" / "care-viewer.svg"))


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """A qtawesome icon (``"mdi6.folder-open-outline"``) in the theme's colours."""
    import qtawesome as qta  # loads its fonts on first use; kept off the import path

    return qta.icon(
        name,
        color=ICON_COLOR,
        color_active=ICON_COLOR_ACTIVE,
        color_on=ICON_COLOR_ACTIVE,
        color_on_active=ICON_COLOR_ACTIVE,
        color_disabled=ICON_COLOR_DISABLED,
    )


def dark_palette() -> QPalette:
    pal = QPalette()
    base, window, text = QColor("#15181c"), QColor("#1b1f24"), QColor("#d6dbe1")
    for role, color in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, QColor("#181c21")),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, QColor("#2a3038")),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.Highlight, QColor("#2d6a8a")),
        (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
        (QPalette.ColorRole.ToolTipBase, QColor("#21262d")),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.PlaceholderText, QColor("#6b7480")),
        (QPalette.ColorRole.Link, QColor("#4fc3f7")),
    ):
        pal.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7480"))
    return pal


ICONS_TOKEN = "@ICONS@"  # in dark.qss: stands for the absolute resources/icons folder


def theme_stylesheet() -> str:
    """resources/styles/dark.qss with ``@ICONS@`` replaced by the absolute icons folder ("" when
    missing). A relative url() in a style sheet resolves against the working directory, so the
    check box tick would vanish when the app starts elsewhere or from the PyInstaller bundle."""
    qss = resources_dir() / "styles" / "dark.qss"
    if not qss.is_file():
        return ""
    icons = (resources_dir() / "icons").resolve().as_posix()  # forward slashes: Qt's url() on Windows too
    return qss.read_text(encoding="utf-8").replace(ICONS_TOKEN, icons)


def apply_theme(app: QApplication) -> None:
    """Fusion + dark palette + resources/styles/dark.qss (missing qss: palette only)."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    qss = theme_stylesheet()
    if qss:
        app.setStyleSheet(qss)
