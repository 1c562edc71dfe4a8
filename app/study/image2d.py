"""2D pictures (PNG, JPEG, BMP, TIFF) via OpenCV: greyscale or RGB, spacing 1, modality OT."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .display import default_window
from .image_header import image_size
from .limits import over_cap
from .volume import LoadError, ModalitySource, SourceFormat, Volume, Window

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_image2d(path: str) -> Volume | LoadError:
    import cv2

    try:
        # imdecode on the bytes, because cv2.imread cannot open non-ASCII paths on Windows.
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        return LoadError(str(path), f"cannot read file: {exc.strerror or exc}")
    size = image_size(data[:1 << 18].tobytes())
    if size is not None and (reason := over_cap(size)):
        return LoadError(str(path), reason)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        return LoadError(str(path), "not a readable image (corrupt or unsupported format)")
    warnings: list[str] = []
    if img.ndim == 3:
        if img.shape[2] == 4:
            img = img[:, :, :3]
        elif img.shape[2] == 1:
            img = img[:, :, 0]
    if img.ndim == 3:
        if img.dtype != np.uint8:  # 16-bit colour: keep the top 8 bits
            img = (img >> 8).astype(np.uint8) if img.dtype == np.uint16 else np.clip(img, 0, 255).astype(np.uint8)
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            array = np.ascontiguousarray(rgb[None, :, :, 0])  # grey picture saved as RGB
        else:
            array = rgb[None]
    else:
        array = img[None]
        if array.dtype not in (np.uint8, np.uint16, np.int16, np.float32):
            array = array.astype(np.float32)
    volume = Volume(
        array=np.ascontiguousarray(array),
        spacing=(1.0, 1.0, 1.0),
        origin=(0.0, 0.0, 0.0),
        direction=np.eye(3),
        modality="OT",
        description=Path(path).name,
        source_format=SourceFormat.IMAGE2D,
        source_files=[str(path)],
        headers=[{"file": Path(path).name, "width": int(array.shape[2]), "height": int(array.shape[1])}],
        frames=1,
        warnings=warnings,
        # A picture file has no physical calibration: measure in pixels.
        spacing_source="none",
        modality_source=ModalitySource.NONE,
    )
    if volume.is_rgb:
        volume.window = Window(127.5, 255.0, "RGB")
    elif array.dtype == np.uint8:
        volume.window = Window(127.5, 255.0, "full range")
    else:
        volume.window = default_window("OT", array)
    return volume
