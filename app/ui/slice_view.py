"""The central 2-D slice viewport: scroll, zoom, pan, window/level, reformats, overlays,
orientation labels, scale bar and corner annotations.

This module holds the view's state and geometry; its drawing helpers are in
:mod:`.slice_painting`, its mouse/keyboard handling in :mod:`.slice_interaction` and the
cursor readout and presets in :mod:`.slice_readout`.

Screen mapping: the slice image (``geom.image_size`` voxels) is drawn as a rectangle of
``physical_size`` mm scaled by ``self._scale`` screen pixels per mm, centred on the
viewport centre plus ``self._pan``. Everything else (cursor readout, boxes, the scale bar)
goes through :meth:`widget_to_image` / :meth:`image_to_widget`. A viewing transform
(flip/rotate, :mod:`.view_tools`) turns that rectangle about its centre; the two mapping
functions include it, so every consumer (boxes, the box tool, readout) follows it.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.study.display import auto_window, default_window
from app.study.display_frame import display_frame
from app.study.reformat import Plane, SliceGeometry, is_single_image, native_plane, slice_geometry
from app.study.view_transform import IDENTITY
from app.study.volume import SourceFormat, Volume, Window

from .overlays import OverlayManager
from .slice_interaction import ZOOM_STEP, DragMode, SliceInteractionMixin
from .slice_painting import SlicePaintingMixin
from .slice_readout import CursorInfo, modality_unit, window_presets
from .slice_renderer import Frame, SliceRenderer
from .view_tools import ViewToolsMixin

__all__ = ["CursorInfo", "DragMode", "MAX_ZOOM", "MIN_ZOOM", "SliceView", "ZOOM_STEP", "modality_unit",
           "window_presets"]

MIN_ZOOM = 0.05  # fraction of "one voxel per screen pixel"
MAX_ZOOM = 40.0


class SliceView(ViewToolsMixin, SliceInteractionMixin, SlicePaintingMixin, QWidget):
    slice_changed = Signal(int, int)  # index, count
    window_changed = Signal(object)  # Window
    zoom_changed = Signal(float)  # fraction (1.0 = one voxel column per screen pixel)
    plane_changed = Signal(str)
    cursor_moved = Signal(object)  # CursorInfo | None
    volume_changed = Signal(object)  # Volume | None
    view_changed = Signal()  # flip/rotate or display inversion changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SliceView")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

        self.overlays = OverlayManager(self)
        self.overlays.changed.connect(self.update)
        self._renderer = SliceRenderer()

        self._volume: Volume | None = None
        self._plane = Plane.AXIAL
        self._geoms: dict[Plane, SliceGeometry] = {}
        self._index: dict[Plane, int] = {}
        self._window = Window(0.0, 1.0, "")
        self._window_touched = False  # the user changed W/L: loading must not reset it
        self._scale = 1.0  # screen px per mm
        self._pan = QPointF(0.0, 0.0)
        self._fit = True  # re-fit on resize until the user zooms
        self.drag_mode = DragMode.PAN
        self.show_annotations = True
        self.show_overlays = True
        self.show_dicom_overlays = True  # the file's overlay planes (60xx), key O
        self._message = ""
        self._message_is_error = False
        self._transform = IDENTITY  # viewing flip/rotate (display only)
        self._invert_view = False  # display inversion by the user (display only)
        self._turned: QPixmap | None = None  # the frame flipped/turned for the blit, cached
        self._turned_key: tuple | None = None
        self.extra_painters: list = []  # extra painters, called as f(view, painter) after the image

        self._drag_button: Qt.MouseButton | None = None
        self._drag_start = QPointF()
        self._drag_window = self._window
        self._drag_pan = QPointF()
        self._drag_scale = 1.0
        self._last_cursor: QPointF | None = None
        # The user scrolled by hand: progressive loading stops moving the slice.
        self.user_navigated = False

    # ======================================================================== state ==
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def plane(self) -> Plane:
        return self._plane

    @property
    def geometry_(self) -> SliceGeometry | None:
        """The current plane's display geometry (``geometry`` is taken by QWidget)."""
        return self._geoms.get(self._plane)

    @property
    def window(self) -> Window:
        return self._window

    @property
    def slice_index(self) -> int:
        return self._index.get(self._plane, 0)

    @property
    def slice_count(self) -> int:
        g = self.geometry_
        return g.num_slices if g else 0

    @property
    def zoom(self) -> float:
        """1.0 = one voxel column per screen pixel."""
        g = self.geometry_
        return self._scale * g.pixel_spacing[0] if g else 1.0

    def set_message(self, text: str, error: bool = False) -> None:
        """Text shown in the viewport when no image is shown (empty state, errors)."""
        self._message = text
        self._message_is_error = error
        self.update()

    # ======================================================================= volume ==
    def set_volume(self, volume: Volume | None, *, window: Window | None = None) -> None:
        """Show ``volume`` (None clears). Overlays are cleared: they belong to a volume."""
        if volume is self._volume:
            return
        self._volume = volume
        self.overlays.clear()
        self._geoms.clear()
        self._index.clear()
        self._renderer.invalidate()
        self._window_touched = False
        self.user_navigated = False
        self._reset_view_state()
        if volume is None:
            self.overlays.set_volume_shape(None)
            self.volume_changed.emit(None)
            self.cursor_moved.emit(None)
            self.update()
            return
        self._message = ""
        self.overlays.set_volume_shape(volume.array.shape[:3], display_frame(volume).shape)
        for plane in Plane:
            g = slice_geometry(volume, plane)
            self._geoms[plane] = g
            self._index[plane] = g.num_slices // 2
        self._plane = native_plane(volume)
        self._window = window or self._initial_window(volume)
        self._fit = True
        self._fit_to_view()
        self.volume_changed.emit(volume)
        self.plane_changed.emit(self._plane.value)
        self.window_changed.emit(self._window)
        self.slice_changed.emit(self.slice_index, self.slice_count)
        self.update()

    def _initial_window(self, volume: Volume) -> Window:
        w = volume.window
        # The model's placeholder (0, 1, "auto") means the loader had no window to give.
        if w.width > 1.0 or w.name not in ("auto", ""):
            return w
        if volume.is_rgb:
            return Window(127.5, 255.0, "RGB")
        return default_window(volume.modality, volume.slice(self.slice_index_for(native_plane(volume))))

    def slice_index_for(self, plane: Plane) -> int:
        return self._index.get(plane, 0)

    def refresh_data(self, *, follow_slice: int | None = None) -> None:
        """The volume's voxels changed in place (progressive loading): re-render.

        ``follow_slice``: while loading, show this slice if the user has not scrolled yet
        (so the first image appears as soon as it is read)."""
        self._renderer.invalidate()
        if follow_slice is not None and self._volume is not None:
            self.set_slice(follow_slice, plane=native_plane(self._volume), quiet=False)
        self.update()

    def loading_finished(self) -> None:
        """Loading is complete: adopt the loader's window unless the user set one."""
        if self._volume is not None and not self._window_touched:
            w = self._initial_window(self._volume)
            if w != self._window:
                self._window = w
                self.window_changed.emit(w)
        self._renderer.invalidate()
        self.update()

    # ======================================================================= planes ==
    def available_planes(self) -> list[Plane]:
        if self._volume is None:
            return []
        if is_single_image(self._volume):
            return [native_plane(self._volume)]
        return list(Plane)

    def set_plane(self, plane: Plane | str) -> None:
        plane = Plane(plane)
        if self._volume is None or plane not in self.available_planes() or plane == self._plane:
            return
        self._plane = plane
        self._fit = True
        self._fit_to_view()
        self.plane_changed.emit(plane.value)
        self.slice_changed.emit(self.slice_index, self.slice_count)
        self._emit_zoom()
        self._refresh_cursor()
        self.update()

    # ======================================================================= slices ==
    def set_slice(self, k: int, *, plane: Plane | None = None, quiet: bool = False) -> None:
        plane = plane or self._plane
        g = self._geoms.get(plane)
        if g is None:
            return
        k = max(0, min(g.num_slices - 1, int(k)))
        if self._index.get(plane) == k:
            return
        self._index[plane] = k
        if plane == self._plane:
            if not quiet:
                self.slice_changed.emit(k, g.num_slices)
            self._refresh_cursor()
            self.update()

    def scroll(self, steps: int) -> None:
        self.set_slice(self.slice_index + steps)

    # ======================================================================= window ==
    def set_window(self, window: Window, *, user: bool = True) -> None:
        window = Window(float(window.center), max(float(window.width), 1.0), window.name)
        if user:
            self._window_touched = True
        if window == self._window:
            return
        self._window = window
        self.window_changed.emit(window)
        self.update()

    def apply_preset(self, name: str) -> None:
        if self._volume is None:
            return
        presets = window_presets(self._volume)
        if name not in presets:
            raise KeyError(f"no window preset {name!r} for {self._volume.modality}")
        if name == "auto":
            self.set_window(auto_window(self._volume.array, "auto"))
        else:
            self.set_window(presets[name])

    def cycle_voi_window(self) -> Window | None:
        """Step to the file's next VOI window (WindowCenter/Width pair); None if it has none."""
        v = self._volume
        if v is None or v.is_rgb or not v.voi_windows:
            return None
        windows = v.voi_windows
        current = next((i for i, w in enumerate(windows)
                        if (w.center, w.width) == (self._window.center, self._window.width)), -1)
        window = windows[(current + 1) % len(windows)]
        self.set_window(window)
        return window

    def toggle_dicom_overlays(self) -> bool:
        """Show or hide the file's overlay planes; returns the new state."""
        self.show_dicom_overlays = not self.show_dicom_overlays
        self.update()
        return self.show_dicom_overlays

    def reset_window(self) -> None:
        if self._volume is not None:
            self.set_window(self._initial_window(self._volume), user=False)
            self._window_touched = False

    # ========================================================================= zoom ==
    def _viewport_rect(self) -> QRectF:
        return QRectF(self.rect())

    def _fit_to_view(self) -> None:
        g = self.geometry_
        if g is None:
            return
        pw, ph = self._transform.shown_size(*g.physical_size)
        r = self._viewport_rect()
        margin = 0.96  # keep the edge labels off the image
        self._scale = max(1e-6, min(r.width() / pw, r.height() / ph) * margin)
        self._pan = QPointF(0.0, 0.0)

    def fit(self) -> None:
        self._fit = True
        self._fit_to_view()
        self._emit_zoom()
        self._refresh_cursor()
        self.update()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` (1.0 = one voxel per screen pixel) keeping ``anchor`` fixed."""
        g = self.geometry_
        if g is None:
            return
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        new_scale = zoom / g.pixel_spacing[0]
        anchor = anchor if anchor is not None else self._viewport_rect().center()
        # Keep the image point under the anchor where it is.
        c = self._viewport_rect().center() + self._pan
        self._pan += (anchor - c) * (1.0 - new_scale / self._scale)
        self._scale = new_scale
        self._fit = False
        self._emit_zoom()
        self._refresh_cursor()
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self.zoom * factor, anchor)

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1.0 / ZOOM_STEP)

    def pan_by(self, dx: float, dy: float) -> None:
        self._pan += QPointF(dx, dy)
        self._fit = False
        self.update()

    def _emit_zoom(self) -> None:
        self.zoom_changed.emit(self.zoom)

    # ================================================================== coordinates ==
    def image_rect(self) -> QRectF:
        """Where the whole slice is drawn, in widget coordinates (after the view transform)."""
        g = self.geometry_
        if g is None:
            return QRectF()
        pw, ph = self._transform.shown_size(*g.physical_size)
        w, h = pw * self._scale, ph * self._scale
        c = self.image_centre()
        return QRectF(c.x() - w / 2, c.y() - h / 2, w, h)

    def image_centre(self) -> QPointF:
        """The widget point of the slice's centre (the view transform turns about it)."""
        return self._viewport_rect().center() + self._pan

    def widget_to_image(self, p: QPointF) -> tuple[float, float]:
        """Widget point -> continuous (col, row) in slice pixels (0..W, 0..H)."""
        g = self.geometry_
        if g is None:
            return 0.0, 0.0
        (w, h), (pw, ph) = g.image_size, g.physical_size
        c, s = self.image_centre(), self._scale
        x, y = self._transform.invert((p.x() - c.x()) / s, (p.y() - c.y()) / s)  # mm, standard layout
        return (x / pw + 0.5) * w, (y / ph + 0.5) * h

    def image_to_widget(self, col: float, row: float) -> QPointF:
        """Continuous (col, row) in slice pixels -> widget point (pixel centre at +0.5)."""
        g = self.geometry_
        if g is None:
            return QPointF()
        (w, h), (pw, ph) = g.image_size, g.physical_size
        x, y = self._transform.apply((col / w - 0.5) * pw, (row / h - 0.5) * ph)
        c, s = self.image_centre(), self._scale
        return QPointF(c.x() + x * s, c.y() + y * s)

    def cursor_info_at(self, p: QPointF) -> CursorInfo | None:
        g, v = self.geometry_, self._volume
        if g is None or v is None:
            return None
        col, row = self.widget_to_image(p)
        w, h = g.image_size
        if not (0 <= col < w and 0 <= row < h):
            return None
        i, j, k = g.voxel_index(self.slice_index, col, row)
        lps = v.index_to_lps(np.array([i, j, k]))[0]
        raw = v.array[k, j, i]
        value: float | tuple[int, int, int]
        if v.is_rgb:
            value = tuple(int(c) for c in raw)  # type: ignore[assignment]
        else:
            value = float(raw)
        # A radiograph or a picture has no patient frame: no invented LPS millimetres.
        where = None if v.projection or v.source_format == SourceFormat.IMAGE2D else (
            float(lps[0]), float(lps[1]), float(lps[2]))
        return CursorInfo((i, j, k), where, value, modality_unit(v))

    def _refresh_cursor(self) -> None:
        if self._last_cursor is not None:
            self.cursor_moved.emit(self.cursor_info_at(self._last_cursor))

    # ===================================================================== rendering ==
    def current_frame(self) -> Frame | None:
        """The displayed slice at image resolution (windowed + overlays)."""
        g, v = self.geometry_, self._volume
        if g is None or v is None:
            return None
        stack = self.overlays.stack if self.show_overlays else _EMPTY_STACK
        return self._renderer.frame(v, g, self.slice_index, self._window, stack,
                                    dicom_overlays=self.show_dicom_overlays, invert_view=self._invert_view)

    def frame_shape(self) -> tuple[int, int] | None:
        """(rows, cols) of the displayed slice in voxels."""
        f = self.current_frame()
        return None if f is None else tuple(f.array.shape[:2])  # type: ignore[return-value]

    def resizeEvent(self, event) -> None:  # noqa: N802
        if self._fit and self.geometry_ is not None:
            self._fit_to_view()
            self._emit_zoom()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        frame = self.current_frame()
        if frame is None:
            self._paint_message(p)
            p.end()
            return
        # Bilinear when shrinking or mildly enlarging; at high zoom show the voxels.
        smooth = self.zoom < 3.0
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        self._draw_image(p, frame)
        for paint in self.extra_painters:
            paint(self, p)
        if self.show_overlays:
            self._paint_boxes(p)
        if self.show_annotations:
            self._paint_annotations(p)
        p.end()


class _EmptyStack:
    version = -1

    def masks_for(self, *args, **kwargs):
        return []

    def boxes_for(self, *args, **kwargs):
        return []


_EMPTY_STACK = _EmptyStack()
