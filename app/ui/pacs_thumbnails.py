"""Series thumbnails for the study browser: one instance fetched from the node, windowed as
the viewer would (its file window, else the modality default) and letterboxed to a square."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPixmap

from .slice_renderer import numpy_to_qimage

log = logging.getLogger(__name__)

THUMB = 72


def thumbnail_array(ds: Any) -> np.ndarray | None:
    """A windowed uint8 picture of one instance (its middle frame), or None when it has no
    pixels that can be shown (SR, PDF, an undecodable transfer syntax)."""
    from app.study.display import apply_window, default_window
    from app.study.volume import Window

    if ds is None or "PixelData" not in ds:
        return None
    try:
        from pydicom.pixels import apply_modality_lut

        arr = np.asarray(ds.pixel_array)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            arr = arr[frames // 2]
        if arr.ndim == 3:  # colour
            return np.ascontiguousarray(arr[..., :3].astype(np.uint8))
        values = np.asarray(apply_modality_lut(arr, ds), np.float32)
    except Exception as exc:  # noqa: BLE001 - a thumbnail that cannot be drawn is only missing
        log.info("no thumbnail for %s: %s", ds.get("SOPInstanceUID", "?"), exc)
        return None
    window = default_window(str(ds.get("Modality", "")), values)
    try:
        c, w = ds.get("WindowCenter"), ds.get("WindowWidth")
        if c is not None and w is not None:
            c = float(c[0] if hasattr(c, "__len__") and not isinstance(c, str) else c)
            w = float(w[0] if hasattr(w, "__len__") and not isinstance(w, str) else w)
            if w > 1:
                window = Window(c, w, "file")
    except (TypeError, ValueError):
        pass
    img = apply_window(values, window, invert=str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1")
    return np.ascontiguousarray(img)



def thumb_pixmap(img: np.ndarray | None) -> QPixmap:
    canvas = QPixmap(THUMB, THUMB)
    canvas.fill(Qt.GlobalColor.black)
    if img is None:
        return canvas
    pm = QPixmap.fromImage(numpy_to_qimage(img)).scaled(
        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    p = QPainter(canvas)
    p.drawPixmap((THUMB - pm.width()) // 2, (THUMB - pm.height()) // 2, pm)
    p.end()
    return canvas


__all__ = ["THUMB", "thumb_pixmap", "thumbnail_array"]
