"""Qt face of :class:`app.study.overlays.OverlayStack`: the public overlay API of a
:class:`~app.ui.slice_view.SliceView` (``view.overlays``).

    layer = view.overlays.add("tumour", mask3d, "#ff5050", opacity=0.4)
    view.overlays.add("entity 1", mask2d, (80, 200, 255), slice_index=23, outline=True)
    view.overlays.add_box("zoom-in crop", 23, (120, 140, 260, 300), "#ffd400")
    view.overlays.set_opacity("tumour", 0.7); view.overlays.set_visible("tumour", False)
    view.overlays.changed.connect(...)

Every method takes the layer *name*. ``changed`` fires after each edit (the view
re-renders on it); ``layers_changed`` only when layers are added or removed (for lists).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.study.overlays import RGB, BoxLayer, Layer, MaskLayer, OverlayStack


class OverlayManager(QObject):
    changed = Signal()
    layers_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.stack = OverlayStack()
        self.stack.subscribe(self.changed.emit)

    # The view sets this when a volume is shown so shape errors are caught at add().
    # ``slice_shape``: (rows, cols) of the acquisition plane's display frame (2-D layers live there).
    def set_volume_shape(self, shape: tuple[int, ...] | None, slice_shape: tuple[int, int] | None = None) -> None:
        self.stack.volume_shape = tuple(shape[:3]) if shape else None  # type: ignore[assignment]
        self.stack.slice_shape = tuple(slice_shape) if shape and slice_shape else None  # type: ignore[assignment]

    @property
    def version(self) -> int:
        return self.stack.version

    def __iter__(self):
        return iter(self.stack)

    def __len__(self) -> int:
        return len(self.stack)

    def __contains__(self, name: object) -> bool:
        return name in self.stack

    def names(self) -> list[str]:
        return self.stack.names()

    def get(self, name: str) -> Layer:
        return self.stack.get(name)

    def add(
        self,
        name: str,
        mask: np.ndarray,
        color: RGB | str | None = None,
        opacity: float = 0.4,
        visible: bool = True,
        *,
        slice_index: int | None = None,
        outline: bool = False,
    ) -> MaskLayer:
        layer = self.stack.add(name, mask, color, opacity, visible, slice_index=slice_index, outline=outline)
        self.layers_changed.emit()
        return layer

    def add_box(
        self,
        name: str,
        slice_index: int,
        rect: tuple[float, float, float, float],
        color: RGB | str | None = None,
        *,
        opacity: float = 1.0,
        visible: bool = True,
        line_width: float = 2.0,
        label: str = "",
    ) -> BoxLayer:
        layer = self.stack.add_box(
            name, slice_index, rect, color, opacity=opacity, visible=visible, line_width=line_width, label=label
        )
        self.layers_changed.emit()
        return layer

    def set_visible(self, name: str, visible: bool) -> None:
        self.stack.set_visible(name, visible)

    def set_opacity(self, name: str, opacity: float) -> None:
        self.stack.set_opacity(name, opacity)

    def set_color(self, name: str, color: RGB | str) -> None:
        self.stack.set_color(name, color)

    def set_outline(self, name: str, outline: bool) -> None:
        self.stack.set_outline(name, outline)

    def remove(self, name: str) -> None:
        self.stack.remove(name)
        self.layers_changed.emit()

    def clear(self) -> None:
        had = len(self.stack) > 0
        self.stack.clear()
        if had:
            self.layers_changed.emit()
