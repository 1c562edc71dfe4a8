"""Small dialogs: load errors, keyboard shortcuts, about."""
from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Wheel, Page Up/Down, ↑/↓, ←/→", "Previous / next slice (Page Up/Down jump 10%)"),
    ("Home / End", "First / last slice"),
    ("Ctrl + wheel, + / -", "Zoom in / out"),
    ("F", "Fit image to the viewport"),
    ("Right-drag", "Window/level: horizontal = width, vertical = level"),
    ("Middle-drag (or left-drag in Pan mode)", "Pan"),
    ("R", "Reset window/level"),
    ("1 / 2 / 3", "Axial / coronal / sagittal"),
    ("O", "Show / hide overlays"),
    ("Ctrl+O / Ctrl+Shift+O", "Open file(s) / open folder"),
    ("Ctrl+Q", "Quit"),
)


class ErrorsDialog(QDialog):
    """Non-modal list of files that could not be read (one line each, no traceback)."""

    def __init__(self, errors: Sequence[object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Some files could not be opened")
        self.setModal(False)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        n = len(errors)
        head = QLabel(f"{n} item{'s' if n != 1 else ''} could not be opened:", self)
        self.list = QListWidget(self)
        for e in errors:
            self.list.addItem(str(e))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.list, 1)
        lay.addWidget(buttons)
        self.resize(640, 260)


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        table = QTableWidget(len(SHORTCUTS), 2, self)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (k, a) in enumerate(SHORTCUTS):
            table.setItem(r, 0, QTableWidgetItem(k))
            table.setItem(r, 1, QTableWidgetItem(a))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        lay.addWidget(buttons)
        self.resize(620, 420)
