"""1x1, 1x2 and 2x2 layouts of the central area, with reference lines and click-linked
navigation across the panes.

The primary pane is the window's ``view``: the one Ask, the box tool, the measurement
tools, the status bar and the tag browser act on (the "active" pane; its frame is thick).
The other panes are reference views of the same volume: in 1x2 the next plane, in 2x2 the
two other planes and the acquisition plane in standard orientation (no flip/rotate/invert).
A click (press and release without moving) on any pane moves every other pane to the
clicked voxel; a double-click on a reference pane brings its plane to the active pane.
Window/level is shared by all panes.
"""
from __future__ import annotations

import enum

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from app.study.reformat import Plane, is_single_image, native_plane

from .reference_lines import reference_painter
from .slice_view import SliceView

CLICK_SLOP_PX = 4  # a press and release closer than this is a click, not a drag


class Layout(str, enum.Enum):
    SINGLE = "1x1"
    TWO = "1x2"
    FOUR = "2x2"

    @property
    def panes(self) -> int:
        return {"1x1": 1, "1x2": 2, "2x2": 4}[self.value]


class ViewLayout(QObject):
    layout_changed = Signal(str)
    linked = Signal(tuple)  # voxel (i, j, k) every other pane moved to

    def __init__(self, window, primary: SliceView) -> None:
        super().__init__(window)
        self.window = window
        self.primary = primary
        self.layout = Layout.SINGLE
        self.container = QWidget(window)
        self.container.setObjectName("ViewLayout")
        self.grid = QGridLayout(self.container)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        # The view becomes a child of the container (takeCentralWidget keeps it alive).
        taken = window.takeCentralWidget()
        assert taken is primary
        self.grid.addWidget(primary, 0, 0)
        window.setCentralWidget(self.container)
        self.secondaries: list[SliceView] = []
        for _ in range(3):
            s = SliceView(self.container)
            s.setObjectName("ReferenceView")
            s.hide()
            if hasattr(window, "status"):
                s.cursor_moved.connect(window.status.set_cursor)  # HU/LPS readout in every pane
            self.secondaries.append(s)
        self._press: dict[int, QPointF] = {}
        for pane in self.all_panes:
            pane.extra_painters.append(reference_painter(self.visible_panes, self.caption))
            pane.installEventFilter(self)
            pane.slice_changed.connect(self._repaint_all)
            pane.window_changed.connect(lambda w, src=pane: self._share_window(src, w))
        primary.volume_changed.connect(lambda _v: self._sync_volume())
        primary.plane_changed.connect(lambda _p: self._assign_planes())
        primary.view_changed.connect(self._repaint_all)
        window.series_loaded.connect(lambda _v: self._refresh_secondaries())

    # ----- panes ----------------------------------------------------------------------
    @property
    def all_panes(self) -> list[SliceView]:
        return [self.primary, *self.secondaries]

    def visible_panes(self) -> list[SliceView]:
        return self.all_panes[: self.layout.panes]

    def caption(self, view: SliceView) -> str:
        if view is self.primary:
            return "Active pane (Ask, box tool)"
        if self.layout == Layout.FOUR and view is self.secondaries[2]:
            return "Acquisition plane, standard orientation"
        return ""

    def set_layout(self, layout: Layout | str) -> None:
        layout = Layout(layout)
        if layout == self.layout:
            return
        self.layout = layout
        for s in self.secondaries:
            self.grid.removeWidget(s)
            s.hide()
        cells = [(0, 1), (1, 0), (1, 1)] if layout == Layout.FOUR else [(0, 1)]
        for s, (r, c) in zip(self.secondaries[: layout.panes - 1], cells):
            self.grid.addWidget(s, r, c)
            s.show()
        self._sync_volume()
        self.layout_changed.emit(layout.value)
        self._repaint_all()

    # ----- following the primary ------------------------------------------------------
    def _sync_volume(self) -> None:
        v = self.primary.volume
        multiplanar = v is not None and not is_single_image(v)
        shown = self.secondaries[: self.layout.panes - 1]
        for s in self.secondaries:
            if s not in shown:
                s.set_volume(None)  # a hidden pane must not keep an old study alive
                continue
            s.set_volume(v if multiplanar else None, window=self.primary.window if multiplanar else None)
            s.set_message("" if v is None else "Only the acquisition plane exists for this series "
                          "(a single image or a cine): no other plane to show." if not multiplanar else "")
        self._assign_planes()

    def _assign_planes(self) -> None:
        v = self.primary.volume
        if v is None or is_single_image(v):
            return
        others = [p for p in Plane if p != self.primary.plane]
        planes = [others[0], others[1], native_plane(v)]
        for s, plane in zip(self.secondaries, planes):
            if s.volume is v:
                s.set_plane(plane)
                self._follow(s)
        self._repaint_all()

    def _follow(self, pane: SliceView) -> None:
        """Put ``pane`` through the point the other panes' slices meet (the crosshair), so
        a pane given a new plane starts linked; axes no pane fixes stay at the middle."""
        g = pane.geometry_
        if g is None:
            return
        arr = [n // 2 for n in g.shape]  # array order [z, y, x]
        for p in self.visible_panes():
            pg = p.geometry_
            if p is not pane and pg is not None and p.volume is pane.volume:
                arr[pg.slice_axis] = p.slice_index
        pane.set_slice(arr[g.slice_axis])

    def _refresh_secondaries(self) -> None:
        for s in self.secondaries:
            if s.volume is not None:
                s.refresh_data()  # the voxels filled in while loading
                s.set_window(self.primary.window, user=False)

    def _share_window(self, source: SliceView, window) -> None:
        for p in self.visible_panes():
            if p is not source and p.volume is source.volume:
                p.set_window(window, user=source is not self.primary)

    def _repaint_all(self, *_args) -> None:
        for p in self.visible_panes():
            p.update()

    # ----- linking by click -----------------------------------------------------------
    def link_to(self, source: SliceView, point: QPointF) -> tuple[int, int, int] | None:
        """Move every other pane to the voxel under ``point`` of ``source``."""
        g, v = source.geometry_, source.volume
        if g is None or v is None or self.layout == Layout.SINGLE:
            return None
        col, row = source.widget_to_image(point)
        w, h = g.image_size
        if not (0 <= col < w and 0 <= row < h):
            return None
        ijk = g.voxel_index(source.slice_index, col, row)
        for p in self.visible_panes():
            pg = p.geometry_
            if p is not source and pg is not None and p.volume is v:
                p.user_navigated = True
                p.set_slice(pg.screen_position(ijk)[0])
        self._repaint_all()
        self.linked.emit(ijk)
        return ijk

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        et = event.type()
        if et == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press[id(obj)] = event.position()
        elif et == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            start = self._press.pop(id(obj), None)
            if start is not None and (event.position() - start).manhattanLength() < CLICK_SLOP_PX:
                self.link_to(obj, event.position())
        elif et == QEvent.Type.MouseButtonDblClick and obj is not self.primary and obj.volume is not None:
            self.primary.set_plane(obj.plane)
        return False  # never consume: the view (and the box tool) see every event
