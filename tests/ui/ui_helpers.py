"""Reading rendered pixels back from a SliceView."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QPointF

from app.ui.slice_renderer import qimage_to_numpy


def grab_rgb(widget) -> np.ndarray:
    """What the widget shows, as (H, W, 3) uint8 (device-independent pixels)."""
    img = widget.grab().toImage()
    if img.devicePixelRatio() != 1:
        img = img.scaled(widget.width(), widget.height())
    return qimage_to_numpy(img)


def focus_voxel(view, col: int, row: int, zoom: float = 8.0) -> QPoint:
    """Zoom in (nearest-neighbour above 300 %) and centre screen pixel (col, row) of the
    current slice; returns the widget point at that voxel's centre."""
    view.set_zoom(zoom)
    p = view.image_to_widget(col + 0.5, row + 0.5)
    c = QPointF(view.width() / 2, view.height() / 2)
    view.pan_by(c.x() - p.x(), c.y() - p.y())
    q = view.image_to_widget(col + 0.5, row + 0.5)
    return QPoint(round(q.x()), round(q.y()))


def pixel(view, point: QPoint) -> tuple[int, int, int]:
    rgb = grab_rgb(view)
    return tuple(int(c) for c in rgb[point.y(), point.x()])
