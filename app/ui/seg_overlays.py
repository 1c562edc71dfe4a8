"""DICOM SEG objects opened with a study, shown as overlays on the series they segment, and
the "Segmentations" panel that lists their segments (label, colour, visibility).

``install_seg_overlays(window)`` adds the dock. The loader already placed every SEG on its
series (:mod:`app.study.dicom.seg_reader`): each segment is a 3-D mask in that series' voxel
grid, so it shows in every reformat. Layers are named ``seg:*``; the viewer clears them with
the volume, and they are drawn again whenever the series they belong to is shown.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.study.overlays import DEFAULT_COLORS, RGB

if TYPE_CHECKING:
    from app.study.dicom.seg_reader import SegOverlay, SegSegment

    from .main_window import MainWindow

LAYER_PREFIX = "seg:"
OPACITY = 0.45
# Each drawn segment is one full volume of bools (the viewer's 3-D layers): at first only as
# many are drawn as fit this budget; the others are listed unticked (a tick draws one).
DRAW_BUDGET_VOXELS = 1_000_000_000


@dataclass(frozen=True, eq=False)
class SegRow:
    """One segment of one SEG, as the panel lists it and the viewer draws it."""

    key: str  # overlay layer name
    overlay: "SegOverlay"
    segment: "SegSegment"
    color: RGB


def rows_for(overlays: list["SegOverlay"]) -> list[SegRow]:
    rows: list[SegRow] = []
    for i, ov in enumerate(overlays):
        for seg in ov.segments:
            color = seg.color or DEFAULT_COLORS[len(rows) % len(DEFAULT_COLORS)]
            rows.append(SegRow(f"{LAYER_PREFIX}{i}:{seg.number}", ov, seg, color))
    return rows


def _swatch(color: RGB) -> QIcon:
    pm = QPixmap(14, 14)
    pm.fill(QColor(*color))
    return QIcon(pm)


class SegPanel(QWidget):
    """The segments of the SEGs in the open study; a checkbox per segment shows or hides it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SegPanel")
        self.caption = QLabel("No segmentation in this study", self)
        self.caption.setObjectName("DockCaption")
        self.caption.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.details = QLabel("", self)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.caption)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.details)

    def set_rows(self, rows: list[SegRow], notes: list[str], hidden: set[str] = frozenset()) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for r in rows:
            s = r.segment
            slices = len(s.slices)
            source = r.overlay.series_description or "DICOM SEG"
            text = f"{s.label}\n{s.voxels} voxels on {slices} slice{'s' if slices != 1 else ''} \u00b7 {source}"
            item = QListWidgetItem(_swatch(r.color), text)
            item.setData(Qt.ItemDataRole.UserRole, r.key)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked if r.key in hidden else Qt.CheckState.Checked)
            tip = [f"SEG: {r.overlay.series_description or r.overlay.sop_instance_uid}",
                   f"on {r.overlay.target.display_name}", f"placed by {r.overlay.placement}"]
            tip += [x for x in (s.description, s.algorithm, s.note) if x]
            item.setToolTip("\n".join(tip))
            self.list.addItem(item)
        self.list.blockSignals(False)
        n_seg = len({id(r.overlay) for r in rows})
        if rows:
            self.caption.setText(f"{n_seg} DICOM SEG object{'s' if n_seg != 1 else ''} · {len(rows)} segment{'s' if len(rows) != 1 else ''}")
        else:
            self.caption.setText("No segmentation in this study")
        self.details.setText("\n".join(notes))


class SegOverlayController(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.panel = SegPanel(window)
        # Under the series list: a study's segmentations belong with its series.
        self.dock = window._make_dock("Segmentations", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.splitDockWidget(window.series_dock, self.dock, Qt.Orientation.Vertical)
        window.panels_menu.addAction(self.dock.toggleViewAction())
        window.resizeDocks([window.series_dock, self.dock], [620, 260], Qt.Orientation.Vertical)
        self.rows: list[SegRow] = []
        self.hidden: set[str] = set()
        window.study_replaced.connect(self.clear)
        window.series_loaded.connect(self._on_loaded)
        window.volume_shown.connect(lambda _v: self.apply())
        self.panel.list.itemChanged.connect(self._on_item_changed)

    def clear(self) -> None:
        self.rows = []
        self.hidden.clear()
        self.panel.set_rows([], [])
        self._remove_layers()

    def _on_loaded(self, _volumes) -> None:
        overlays = list(getattr(self.window, "segmentations", []))
        self.rows = rows_for(overlays)
        notes = [w for ov in overlays for w in ov.warnings]
        notes += [f"{v.display_name}: {w}" for v in self.window.volumes for w in v.warnings if w.startswith("DICOM SEG")]
        used = 0
        for r in self.rows:
            used += int(np.prod(r.segment.shape))
            if used > DRAW_BUDGET_VOXELS:
                self.hidden.add(r.key)
        if self.hidden:
            notes.append(f"{len(self.hidden)} of {len(self.rows)} segments are not drawn yet (each drawn segment "
                         "takes a volume of memory): tick one to draw it")
        self.panel.set_rows(self.rows, notes, self.hidden)
        if self.rows:
            self.dock.show()
        self.apply()

    def apply(self) -> None:
        """Draw the segments of the displayed series (others wait until theirs is shown)."""
        self._remove_layers()
        shown = self.window.current_volume
        for r in self.rows:
            if r.overlay.target is shown and shown is not None and r.key not in self.hidden:
                self._draw(r)

    def _draw(self, r: SegRow) -> None:
        self.window.view.overlays.add(r.key, r.segment.mask, r.color, OPACITY)

    def _remove_layers(self) -> None:
        ov = self.window.view.overlays
        for name in [n for n in ov.names() if n.startswith(LAYER_PREFIX)]:
            ov.remove(name)

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        key = item.data(Qt.ItemDataRole.UserRole)
        on = item.checkState() == Qt.CheckState.Checked
        (self.hidden.discard if on else self.hidden.add)(key)
        ov = self.window.view.overlays
        if not on and key in ov:
            ov.remove(key)  # frees its volume of bools
        elif on and key not in ov:
            row = next((r for r in self.rows if r.key == key), None)
            if row is not None and row.overlay.target is self.window.current_volume:
                self._draw(row)


def install_seg_overlays(window: "MainWindow") -> SegOverlayController:
    return SegOverlayController(window)


__all__ = ["LAYER_PREFIX", "SegOverlayController", "SegPanel", "SegRow", "install_seg_overlays", "rows_for"]
