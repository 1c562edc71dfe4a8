"""Small dialogs: load errors, keyboard shortcuts, about."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
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

# Keys handled by the slice view itself (not actions) and the mouse: listed by hand because
# no QAction carries them. Every action's and QShortcut's key is collected at open time.
VIEW_KEYS: tuple[tuple[str, str], ...] = (
    ("Wheel, Page Up/Down, \u2191/\u2193, \u2190/\u2192", "Previous / next slice (Page Up/Down jump 10%)"),
    ("Home / End", "First / last slice"),
    ("V", "Next VOI window stored in the file"),
    ("O", "Show / hide the file's DICOM overlay planes (60xx)"),
    ("Ctrl + wheel", "Zoom in / out"),
    ("Right-drag", "Window/level: horizontal = width, vertical = level"),
    ("Middle-drag (or left-drag in Pan mode)", "Pan"),
    ("Left-drag (Draw box on)", "Draw a box for LiteMedSAM; Esc stops drawing"),
    ("Click (1×2 / 2×2 layout)", "Move the other panes to the clicked voxel (reference lines follow)"),
    ("Double-click a reference pane", "Show its plane in the active pane"),
    ("Left-drag (Length, Rectangle, Ellipse on)", "Draw the measurement; drag a point of one to edit it"),
    ("Three clicks (Angle on)", "Arm end, vertex, arm end"),
    ("Click (a Measure tool on)", "Select the measurement under the cursor; Esc cancels, Esc again stops"),
)


@dataclass(frozen=True)
class ShortcutRow:
    keys: str  # as the platform writes them ("Ctrl+Shift+O")
    action: str  # the action's text without mnemonics and ellipsis


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("\u2026").rstrip(".").strip()


def collect_shortcuts(root: QWidget | None) -> list[ShortcutRow]:
    """Every key bound in ``root``'s tree: QActions (all their shortcuts) and QShortcuts,
    sorted by action name; duplicates (an action in a menu and a toolbar) once."""
    if root is None:
        return []
    rows: dict[tuple[str, str], ShortcutRow] = {}
    for a in root.findChildren(QAction):
        name = _plain(a.text() or a.toolTip())
        for seq in a.shortcuts():
            keys = seq.toString(QKeySequence.SequenceFormat.NativeText)
            if keys and name:
                rows.setdefault((keys, name), ShortcutRow(keys, name))
    for sc in root.findChildren(QShortcut):
        keys = sc.key().toString(QKeySequence.SequenceFormat.NativeText)
        name = _plain(sc.whatsThis() or sc.objectName() or "Shortcut")
        if keys:
            rows.setdefault((keys, name), ShortcutRow(keys, name))
    return sorted(rows.values(), key=lambda r: (r.action.lower(), r.keys))


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
    """Every shortcut of the window it opens from (read from its actions, so a new action
    is listed without editing this), then the view's own keys and the mouse."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        self.rows = [(r.keys, r.action) for r in collect_shortcuts(parent)] + list(VIEW_KEYS)
        self.table = table = QTableWidget(len(self.rows), 2, self)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (k, a) in enumerate(self.rows):
            table.setItem(r, 0, QTableWidgetItem(k))
            table.setItem(r, 1, QTableWidgetItem(a))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(table)
        lay.addWidget(buttons)
        self.resize(620, 520)
