"""Turn (volume, plane, slice, window, overlays) into a display image, with caches.

Two levels of cache so interaction stays cheap:
- the *base*: the windowed 8-bit slice; reused while only overlays change;
- the *frame*: base + composited masks as a QImage/QPixmap; reused while panning,
  zooming or repainting, which then costs one scaled blit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QImage, QPixmap

from app.study.display import apply_window
from app.study.overlay_planes import overlay_mask
from app.study.overlays import MaskLayer, OverlayStack, composite
from app.study.reformat import SliceGeometry
from app.study.volume import Volume, Window


# Overlay planes are graphics, drawn opaque in one colour readers know from other viewers.
DICOM_OVERLAY_COLOR = (255, 214, 0)
DICOM_OVERLAY_LAYER = MaskLayer("DICOM overlay", DICOM_OVERLAY_COLOR, opacity=1.0)


def numpy_to_qimage(img: np.ndarray, copy: bool = True) -> QImage:
    """uint8 (H, W) grey or (H, W, 3) RGB -> QImage. With ``copy=False`` the QImage
    borrows the numpy buffer and is only valid while the array lives."""
    if not img.flags.c_contiguous:
        img, copy = np.ascontiguousarray(img), True  # a temporary: the QImage must own it
    h, w = img.shape[:2]
    if img.ndim == 2:
        q = QImage(img.data, w, h, img.strides[0], QImage.Format.Format_Grayscale8)
    elif img.ndim == 3 and img.shape[2] == 3:
        q = QImage(img.data, w, h, img.strides[0], QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"cannot display an array of shape {img.shape}")
    # QImage wraps the numpy buffer without owning it: copy so it outlives `img`.
    return q.copy() if copy else q


def qimage_to_numpy(image: QImage) -> np.ndarray:
    """A QImage as an (H, W, 3) uint8 RGB array (for tests and screenshots)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


@dataclass
class Frame:
    array: np.ndarray  # what is shown, in image pixels: (H, W) grey or (H, W, 3) RGB
    pixmap: QPixmap


class SliceRenderer:
    def __init__(self) -> None:
        self._base_key: tuple | None = None
        self._base: np.ndarray | None = None
        self._frame_key: tuple | None = None
        self._frame: Frame | None = None
        # Bumped when the volume's voxels change in place (progressive loading).
        self.data_version = 0

    def invalidate(self) -> None:
        self.data_version += 1

    def base(self, volume: Volume, geom: SliceGeometry, k: int, window: Window, invert_view: bool = False) -> np.ndarray:
        """``invert_view``: the user's display inversion, on top of the file's MONOCHROME1."""
        invert = volume.invert_display != bool(invert_view)
        key = (id(volume), self.data_version, geom.plane, geom.slice_axis, k, window.center, window.width, invert)
        if key != self._base_key or self._base is None:
            pixels = geom.extract(volume.array, k)
            # MONOCHROME1 and the user's invert act here, in the display mapping (the values stay stored).
            self._base = np.ascontiguousarray(apply_window(pixels, window, invert=invert))
            self._base_key = key
        return self._base

    def frame(
        self, volume: Volume, geom: SliceGeometry, k: int, window: Window, overlays: OverlayStack,
        dicom_overlays: bool = False, invert_view: bool = False,
    ) -> Frame:
        """``dicom_overlays``: draw the file's overlay planes (60xx) of slice ``k`` on top."""
        base = self.base(volume, geom, k, window, invert_view)
        key = (self._base_key, overlays.version, dicom_overlays)
        if key != self._frame_key or self._frame is None:
            layers = overlays.masks_for(geom.extract, geom.slice_axis, k)
            if dicom_overlays:
                layers = layers + self._dicom_layers(volume, geom, k)
            shown = composite(base, layers) if layers else base
            # RGB32 is the raster engine's fast path for scaled, smoothed blits: converting
            # once here makes every later repaint (pan, zoom) several times cheaper.
            img = numpy_to_qimage(shown, copy=False).convertToFormat(QImage.Format.Format_RGB32)
            self._frame = Frame(shown, QPixmap.fromImage(img))
            self._frame_key = key
        return self._frame

    @staticmethod
    def _dicom_layers(volume: Volume, geom: SliceGeometry, k: int) -> list[tuple[MaskLayer, np.ndarray]]:
        """The file's overlay planes exist in the acquisition plane only (one bitmap per slice)."""
        if geom.slice_axis != 0 or not volume.dicom_overlays:
            return []
        mask = overlay_mask(volume.dicom_overlays, k, tuple(volume.array.shape[1:3]))
        if mask is None:
            return []
        return [(DICOM_OVERLAY_LAYER, geom.extract(mask[None], 0))]
