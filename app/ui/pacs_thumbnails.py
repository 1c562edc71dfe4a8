"""Series thumbnails for the study browser: one instance fetched from the node, windowed as
the viewer would (its file window, else the modality default) and letterboxed to a square."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPixmap

from .slice_renderer import numpy_to_qimage

log = logging.getLogger(__name__)

THUMB = 72
# Series that hold no picture to show (or, a SEG, only a mask frame that looks like an empty scan):
# they get a document placeholder instead of pixels. The icon per modality, a document by default.
DOCUMENT_ICONS = {"SR": "mdi6.file-document-outline", "DOC": "mdi6.file-pdf-box", "SEG": "mdi6.layers-outline",
                  "KO": "mdi6.file-document-outline", "PR": "mdi6.file-document-outline"}
DEFAULT_DOCUMENT_ICON = "mdi6.file-document-outline"


def is_document(modality: str) -> bool:
    return (modality or "").strip().upper() in DOCUMENT_ICONS


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



def placeholder_pixmap(modality: str, size: int = THUMB) -> QPixmap:
    """A framed document icon over the modality ("SR", "DOC", "SEG"; "no preview" when none is
    known): never a black square, which a reader takes for an empty or failed scan."""
    from .theme import ICON_COLOR, icon

    mod = (modality or "").strip().upper()
    canvas = QPixmap(size, size)
    canvas.fill(QColor("#1f242b"))
    p = QPainter(canvas)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QPen(QColor("#3a424d"), 1))
    p.drawRoundedRect(0, 0, size - 1, size - 1, 4, 4)
    side = size // 2
    p.drawPixmap((size - side) // 2, size // 8, icon(DOCUMENT_ICONS.get(mod, DEFAULT_DOCUMENT_ICON)).pixmap(side, side))
    font = QFont(p.font())
    font.setBold(bool(mod))
    font.setPixelSize(max(8, size // (6 if mod else 8)))
    p.setFont(font)
    p.setPen(QColor(ICON_COLOR))
    p.drawText(QRect(0, size // 8 + side, size, size - size // 8 - side), Qt.AlignmentFlag.AlignCenter,
               mod or "no preview")
    p.end()
    return canvas


def thumb_pixmap(img: np.ndarray | None, modality: str = "") -> QPixmap:
    """The picture letterboxed on black, or the placeholder for a document series or no picture."""
    if img is None or is_document(modality):
        return placeholder_pixmap(modality)
    canvas = QPixmap(THUMB, THUMB)
    canvas.fill(Qt.GlobalColor.black)
    pm = QPixmap.fromImage(numpy_to_qimage(img)).scaled(
        THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    p = QPainter(canvas)
    p.drawPixmap((THUMB - pm.width()) // 2, (THUMB - pm.height()) // 2, pm)
    p.end()
    return canvas


__all__ = ["THUMB", "is_document", "placeholder_pixmap", "thumb_pixmap", "thumbnail_array"]
