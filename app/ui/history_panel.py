"""Runs of the current study, newest first, from the audit store.

Each row: time, question, answer, status and the number of clinician overrides; re-asked
runs are indented under nothing but marked with the run they re-ask. Double-click (or Open)
reopens a run: its overlays and audit panel come back exactly as recorded.
"""
from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
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

COLUMNS = ("Time", "Question", "Answer", "Status", "Edits")
STATUS_COLORS = {"completed": "#7fd6a0", "cancelled": "#ffd27a", "failed": "#ff9a92", "interrupted": "#ff9a92",
                 "running": "#4fc3f7"}


class HistoryPanel(QWidget):
    open_requested = Signal(str)  # run id
    export_requested = Signal(str)  # run id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("HistoryPanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        self.caption = QLabel("No study open")
        self.caption.setStyleSheet("color:#9aa4af;")
        lay.addWidget(self.caption)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        h = self.tree.header()
        h.setStretchLastSection(False)
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        h.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(4, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setColumnWidth(2, 110)
        self.tree.itemDoubleClicked.connect(lambda it, _c: self._open(it))
        self.tree.itemSelectionChanged.connect(self._update_enabled)
        lay.addWidget(self.tree, 1)
        row = QHBoxLayout()
        self.open_button = QPushButton(icon("mdi6.folder-open-outline"), "Open run")
        self.open_button.setToolTip("Show this run's overlays and audit (double-click a row)")
        self.open_button.clicked.connect(lambda: self._open(self.tree.currentItem()))
        self.export_button = QPushButton(icon("mdi6.file-pdf-box"), "Report\u2026")
        self.export_button.clicked.connect(self._export)
        self.refresh_button = QPushButton(icon("mdi6.refresh"), "")
        self.refresh_button.setToolTip("Reload the history")
        row.addWidget(self.open_button)
        row.addWidget(self.export_button)
        row.addStretch(1)
        row.addWidget(self.refresh_button)
        lay.addLayout(row)
        self.runs: list = []
        self._update_enabled()

    def set_runs(self, runs: Sequence, caption: str, current_run_id: str | None = None) -> None:
        """``runs``: :class:`~app.audit.store.RunSummary` items, newest first."""
        from app.audit.present import fmt_time as _fmt_time

        self.runs = list(runs)
        self.caption.setText(caption)
        self.tree.clear()
        by_id = {r.run_id: r for r in self.runs}
        for r in self.runs:
            answer = " ".join(r.final_answer.split()) or "\u2014"
            q = r.question + ("  (re-ask)" if r.parent_run_id else "")
            it = QTreeWidgetItem([_fmt_time(r.created), q, answer, r.status, str(r.overrides or "")])
            it.setData(0, Qt.ItemDataRole.UserRole, r.run_id)
            tip = (f"Run {r.run_id}\nSlice {r.slice_index + 1} \u00b7 profile {r.profile} \u00b7 {r.mode}\n"
                   f"Q: {r.question}\nA: {answer}")
            if r.parent_run_id:
                parent = by_id.get(r.parent_run_id)
                tip += f"\nRe-asks run {r.parent_run_id[:8]}" + (f" ({_fmt_time(parent.created)})" if parent else "")
            for c in range(len(COLUMNS)):
                it.setToolTip(c, tip)
            it.setForeground(3, QColor(STATUS_COLORS.get(r.status, "#c3cad2")))
            self.tree.addTopLevelItem(it)
            if r.run_id == current_run_id:
                self.tree.setCurrentItem(it)
        self._update_enabled()

    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    def _selected_id(self) -> str | None:
        it = self.tree.currentItem()
        return str(it.data(0, Qt.ItemDataRole.UserRole)) if it is not None else None

    def _openable(self, run_id: str | None) -> bool:
        r = next((x for x in self.runs if x.run_id == run_id), None)
        return r is not None and bool(r.finished)

    def _update_enabled(self) -> None:
        ok = self._openable(self._selected_id())
        self.open_button.setEnabled(ok)
        self.export_button.setEnabled(ok)

    def _open(self, item: QTreeWidgetItem | None) -> None:
        if item is None:
            return
        rid = str(item.data(0, Qt.ItemDataRole.UserRole))
        if self._openable(rid):
            self.open_requested.emit(rid)

    def _export(self) -> None:
        rid = self._selected_id()
        if rid and self._openable(rid):
            self.export_requested.emit(rid)
