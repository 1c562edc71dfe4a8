"""The entities section: the final entities (click one to show its mask), what merged into
what, what the clinician discarded, and what the entity model proposed."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem

from app.audit.audit_view_model import mask_key
from app.audit.palette import mask_colour
from app.audit.present import RunPresentation, breakable, elide

from .widgets import DIM, EDITED, Section, color_icon, esc, label


def fill_entities(sec: Section, p: RunPresentation, highlight: Callable[[str | None], None]) -> QListWidget:
    ents = p.entities
    lst = QListWidget()
    lst.setObjectName("EntityList")
    lst.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    lst.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    for row in ents.rows:
        it = QListWidgetItem(row.label)
        it.setToolTip(row.name)
        if row.mask_index is not None:
            it.setIcon(color_icon(mask_colour(row.mask_index)))
            it.setData(Qt.ItemDataRole.UserRole, mask_key(row.mask_index))
            it.setToolTip("Click to show its mask")
        lst.addItem(it)
    for text in ents.merge_lines:
        it = QListWidgetItem(text)
        it.setForeground(QColor(DIM))
        lst.addItem(it)
    for text in ents.discarded_lines:
        it = QListWidgetItem(text)
        it.setForeground(QColor(EDITED))
        lst.addItem(it)
    if lst.count() == 0:
        it = QListWidgetItem("No entity was proposed: the answer rests on the global image")
        it.setForeground(QColor(DIM))
        lst.addItem(it)
    lst.setFixedHeight(min(10, lst.count()) * (lst.sizeHintForRow(0) + 2) + 6)
    lst.itemClicked.connect(lambda it: highlight(it.data(Qt.ItemDataRole.UserRole)))
    sec.add(lst)
    extra = f"Proposed by the entity model: {esc(breakable(elide(ents.proposed or '(none)', 300)))}"
    if ents.format_problems:
        extra += f"<br>Format problems: {esc(breakable(ents.format_problems))}"
    sec.add(label(extra, rich=True, color=DIM))
    sec.set_title(f"Entities ({ents.count})")
    return lst
