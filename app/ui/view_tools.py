"""Viewing transforms of the slice view: flip, quarter-turn rotation and display inversion
(part of :class:`~app.ui.slice_view.SliceView`).

All three are display only: the stored values, the readout and what the models read are
unchanged. The flip/rotate is one :class:`~app.study.view_transform.ViewTransform` used by
the view's two mapping functions, the image blit and the edge labels, so nothing drawn over
the image can disagree with the image.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF
import numpy as np
from PySide6.QtGui import QImage, QPainter, QPixmap

from app.study.edge_labels import view_edge_labels
from app.study.reformat import EdgeLabels
from app.study.view_transform import IDENTITY, ViewTransform, transform_edge_labels

from .slice_renderer import numpy_to_qimage

if TYPE_CHECKING:
    from .slice_view import SliceView


class ViewToolsMixin:
    """Flip / rotate / invert / reset of :class:`~app.ui.slice_view.SliceView`."""

    @property
    def view_transform(self: "SliceView") -> ViewTransform:
        return self._transform

    def set_view_transform(self: "SliceView", t: ViewTransform) -> None:
        if t == self._transform:
            return
        self._transform = t
        if self._fit:
            self._fit_to_view()  # a quarter turn swaps the shown width and height
            self._emit_zoom()
        self._refresh_cursor()
        self.view_changed.emit()
        self.update()

    def flip_horizontal(self: "SliceView") -> None:
        if self._volume is not None:
            self.set_view_transform(self._transform.flipped_horizontally())

    def flip_vertical(self: "SliceView") -> None:
        if self._volume is not None:
            self.set_view_transform(self._transform.flipped_vertically())

    def rotate_clockwise(self: "SliceView") -> None:
        if self._volume is not None:
            self.set_view_transform(self._transform.rotated(clockwise=True))

    def rotate_counter_clockwise(self: "SliceView") -> None:
        if self._volume is not None:
            self.set_view_transform(self._transform.rotated(clockwise=False))

    def shown_edge_labels(self: "SliceView") -> EdgeLabels | None:
        """The edge labels of the view as shown (after flip/rotate); None when the file
        does not say (a picture, a radiograph without PatientOrientation)."""
        v, g = self._volume, self.geometry_
        if v is None or g is None:
            return None
        labels = view_edge_labels(v, g)
        return None if labels is None else transform_edge_labels(labels, self._transform)

    # ----- inversion ------------------------------------------------------------------
    @property
    def invert_active(self: "SliceView") -> bool:
        return self._invert_view

    def can_invert(self: "SliceView") -> bool:
        """Greyscale only: a colour image has no grey ramp to invert."""
        return self._volume is not None and not self._volume.is_rgb

    def set_invert(self: "SliceView", on: bool) -> None:
        on = bool(on) and self.can_invert()
        if on == self._invert_view:
            return
        self._invert_view = on
        self.view_changed.emit()
        self.update()

    def toggle_invert(self: "SliceView") -> bool:
        """Invert the displayed grey ramp (again: back); returns the new state."""
        self.set_invert(not self._invert_view)
        return self._invert_view

    # ----- reset ----------------------------------------------------------------------
    def reset_view(self: "SliceView") -> None:
        """Standard orientation, no inversion, the initial window, fitted."""
        self._reset_view_state()
        self.reset_window()
        self.fit()

    def _reset_view_state(self: "SliceView") -> None:
        changed = not self._transform.is_identity or self._invert_view
        self._transform = IDENTITY
        self._invert_view = False
        if changed:
            self.view_changed.emit()
            self.update()

    def view_note(self: "SliceView") -> str:
        """How this view differs from what the models read, in words ("" when it does not):
        e.g. "flipped left-right, inverted"."""
        parts = [self._transform.describe()] if not self._transform.is_identity else []
        if self._invert_view:
            parts.append("inverted (display only)")
        return ", ".join(parts)

    # ----- drawing --------------------------------------------------------------------
    def _draw_image(self: "SliceView", p: QPainter, frame) -> None:
        """Blit the slice into :meth:`image_rect`. A flip or quarter turn moves whole pixels
        (numpy) before the blit, so the shown pixels are exactly the turned slice."""
        pixmap = frame.pixmap
        t = self._transform
        if not t.is_identity:
            # Keyed on the pixmap object itself (held, so its id cannot be reused) and the transform.
            key = (frame.pixmap, t)
            if self._turned_key is None or self._turned_key[0] is not frame.pixmap or self._turned_key[1] != t:
                img = np.ascontiguousarray(t.apply_to_array(frame.array))
                self._turned = QPixmap.fromImage(numpy_to_qimage(img).convertToFormat(QImage.Format.Format_RGB32))
                self._turned_key = key
            pixmap = self._turned
        p.drawPixmap(self.image_rect(), pixmap, QRectF(pixmap.rect()))
