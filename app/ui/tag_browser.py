"""DICOM tag browser: the header of the shown instance as a tree (sequences nested),
with a search box that filters by tag number, keyword, VR or value.

Headers are pydicom Datasets (DICOM) or flat dicts (NRRD/NIfTI/images); pydicom is only
duck-typed here so opening the viewer does not import it.
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSortFilterProxyModel, Qt, QTimer
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QHeaderView, QLabel, QLineEdit, QTreeView, QVBoxLayout, QWidget

MAX_VALUE_CHARS = 240
COLUMNS = ("Tag", "Keyword", "VR", "Value")


def _value_text(value: Any) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    text = str(value)
    text = " ".join(text.split())  # multi-line values on one row
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _is_dataset(obj: Any) -> bool:
    return hasattr(obj, "iterall") and hasattr(obj, "data_element")


def header_rows(header: Any) -> list[tuple[str, str, str, str, list]]:
    """(tag, keyword, VR, value, children) rows for a Dataset or a dict."""
    rows: list[tuple[str, str, str, str, list]] = []
    if _is_dataset(header):
        for elem in header:
            tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
            keyword = elem.keyword or elem.name
            if elem.VR == "SQ":
                children = []
                for n, item in enumerate(elem.value):
                    children.append((f"Item {n + 1}", "", "", "", header_rows(item)))
                rows.append((tag, keyword, "SQ", f"{len(elem.value)} item(s)", children))
            elif elem.tag == 0x7FE00010:
                rows.append((tag, keyword, elem.VR, "<pixel data>", []))
            else:
                rows.append((tag, keyword, str(elem.VR), _value_text(elem.value), []))
    elif isinstance(header, dict):
        for key, value in header.items():
            if isinstance(value, dict):
                rows.append(("", str(key), "", "", header_rows(value)))
            else:
                rows.append(("", str(key), "", _value_text(value), []))
    return rows


class TagFilterProxy(QSortFilterProxyModel):
    """Case-insensitive substring match on any column; parents of matches stay visible."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self._needle = ""

    def set_needle(self, text: str) -> None:
        # Accept "0010,0010", "(0010,0010)" or "00100010" for a tag.
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10
            self.beginFilterChange()
            self._needle = text.strip().lower().replace("(", "").replace(")", "")
            self.endFilterChange()
        else:
            self._needle = text.strip().lower().replace("(", "").replace(")", "")
            self.invalidateFilter()

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802
        if not self._needle:
            return True
        model = self.sourceModel()
        for col in range(model.columnCount()):
            text = str(model.index(row, col, parent).data() or "").lower()
            if col == 0:
                text = text.replace("(", "").replace(")", "")
                if self._needle.replace(",", "") == text.replace(",", ""):
                    return True
            if self._needle in text:
                return True
        return False


class TagBrowser(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("TagBrowser")
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Filter by tag, keyword or value…")
        self.search.setClearButtonEnabled(True)
        self.caption = QLabel("No study open", self)
        self.caption.setObjectName("DockCaption")
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.proxy = TagFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.tree = QTreeView(self)
        self.tree.setModel(self.proxy)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(12)
        self.tree.setAlternatingRowColors(True)
        self.tree.setEditTriggers(QTreeView.EditTrigger.NoEditTriggers)
        self.tree.setSelectionBehavior(QTreeView.SelectionBehavior.SelectRows)
        hdr = self.tree.header()
        hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        hdr.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.search)
        layout.addWidget(self.caption)
        layout.addWidget(self.tree, 1)
        # Filtering a big header per keystroke is cheap, but debounce anyway while typing.
        self._filter_timer = QTimer(self)
        self._filter_timer.setSingleShot(True)
        self._filter_timer.setInterval(120)
        self._filter_timer.timeout.connect(self.apply_filter)
        self.search.textChanged.connect(lambda _t: self._filter_timer.start())
        self._header_id: int | None = None

    def apply_filter(self) -> None:
        self.proxy.set_needle(self.search.text())
        if self.search.text().strip():
            self.tree.expandAll()

    def set_header(self, header: Any, caption: str = "") -> None:
        """Show one instance's header (None clears)."""
        self.caption.setText(caption or ("No header" if header is None else ""))
        if header is not None and id(header) == self._header_id:
            return
        self._header_id = None if header is None else id(header)
        self.model.removeRows(0, self.model.rowCount())
        if header is None:
            return
        root = self.model.invisibleRootItem()
        self._fill(root, header_rows(header))
        self.tree.header().resizeSection(1, 160)
        if self.search.text().strip():
            self.tree.expandAll()

    def _fill(self, parent: QStandardItem, rows: list) -> None:
        for tag, keyword, vr, value, children in rows:
            items = [QStandardItem(tag), QStandardItem(keyword), QStandardItem(vr), QStandardItem(value)]
            items[3].setToolTip(value)
            if children:
                self._fill(items[0], children)
            parent.appendRow(items)

    def visible_keywords(self) -> list[str]:
        """Keywords of the top-level rows passing the filter (for tests)."""
        return [self.proxy.index(r, 1).data() for r in range(self.proxy.rowCount())]
