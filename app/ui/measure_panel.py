"""The Measurements panel: every measurement of the displayed study (this session), with its
value, plane, slice and series, and whether it is recorded with the open run. Selecting a
row shows its slice with the measurement highlighted; Delete (key or button) removes it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .theme import icon


@dataclass(frozen=True)
class PanelRow:
    mid: str
    number: int
    tool: str
    value: str  # as drawn on the image: an ROI's statistics over three lines
    where: str  # "axial slice 34", with the series' description when it is not the displayed one
    in_run: str  # "recorded" / "" (no run open, or another series)


COLUMNS = ("#", "Tool", "Value", "Where", "Run")
VALUE_COLUMN = 2
MID_ROLE = Qt.ItemDataRole.UserRole


class MeasurePanel(QWidget):
    selected = Signal(str)  # measurement id
    delete_requested = Signal(str)
    record_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MeasurePanel")
        self.caption = QLabel("No measurements. Tools > Measure: length (M), angle (A), rectangle (Q), ellipse (E).")
        self.caption.setWordWrap(True)
        self.tree = QTreeWidget(self)
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setUniformRowHeights(False)  # an ROI's value takes three lines
        header = self.tree.header()
        header.setStretchLastSection(False)
        for c in range(len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch if c == VALUE_COLUMN
                                        else QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._on_selection)
        # A click on the already selected row goes to it again (after scrolling away).
        self.tree.itemClicked.connect(lambda item, _c: self.selected.emit(str(item.data(0, MID_ROLE))))
        self.delete_button = QPushButton(icon("mdi6.delete-outline"), "Delete")
        self.delete_button.setToolTip("Remove the selected measurement  (Del)")
        self.delete_button.clicked.connect(self._delete_clicked)
        self.record_button = QPushButton(icon("mdi6.clipboard-check-outline"), "Record with run")
        self.record_button.clicked.connect(self.record_requested)
        self.run_label = QLabel("")
        self.run_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.record_button)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.caption)
        lay.addWidget(self.tree, 1)
        lay.addLayout(buttons)
        lay.addWidget(self.run_label)
        self._filling = False
        self.set_rows([])
        self.set_run_state("", False)

    # ----- contents -------------------------------------------------------------------
    def set_rows(self, rows: Sequence[PanelRow], selected: str | None = None) -> None:
        self._filling = True
        self.tree.clear()
        for r in rows:
            item = QTreeWidgetItem([str(r.number), r.tool, r.value, r.where, r.in_run])
            item.setData(0, MID_ROLE, r.mid)
            item.setToolTip(2, r.value)
            self.tree.addTopLevelItem(item)
            if r.mid == selected:
                item.setSelected(True)
        self._filling = False
        n = len(rows)
        self.caption.setText(
            f"{n} measurement{'s' if n != 1 else ''} in this study (kept for the session)." if n else
            "No measurements. Tools > Measure: length (M), angle (A), rectangle (Q), ellipse (E).")
        self.delete_button.setEnabled(self.selected_mid() is not None)

    def rows(self) -> list[list[str]]:
        """What the table shows, row by row (for tests and screenshots)."""
        return [[self.tree.topLevelItem(i).text(c) for c in range(len(COLUMNS))]
                for i in range(self.tree.topLevelItemCount())]

    def selected_mid(self) -> str | None:
        items = self.tree.selectedItems()
        return str(items[0].data(0, MID_ROLE)) if items else None

    def select(self, mid: str | None) -> None:
        self._filling = True
        self.tree.clearSelection()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, MID_ROLE) == mid:
                item.setSelected(True)
                self.tree.scrollToItem(item)
        self._filling = False
        self.delete_button.setEnabled(self.selected_mid() is not None)

    def set_run_state(self, text: str, can_record: bool) -> None:
        self.run_label.setText(text)
        self.record_button.setEnabled(can_record)
        self.record_button.setToolTip(
            "Record this series' measurements with the open run (an override: the run itself is unchanged)"
            if can_record else "Open a run of this series (Ask, or History) to record measurements with it")

    # ----- events ---------------------------------------------------------------------
    def _on_selection(self) -> None:
        mid = self.selected_mid()
        self.delete_button.setEnabled(mid is not None)
        if mid is not None and not self._filling:
            self.selected.emit(mid)

    def _delete_clicked(self) -> None:
        mid = self.selected_mid()
        if mid is not None:
            self.delete_requested.emit(mid)
