"""Window presets and windowing to 8-bit display values (shared by the viewer, the
pipeline's model inputs and the report, so all three show the same pixels)."""
from __future__ import annotations

import numpy as np

from .display_frame import display_frame
from .modality_hint import check_hu
from .volume import ModalitySource, Volume, Window

# Standard radiology presets (center, width) in HU.
CT_PRESETS: dict[str, Window] = {
    "lung": Window(-600.0, 1500.0, "CT lung"),
    "mediastinum": Window(50.0, 350.0, "CT mediastinum"),
    "abdomen": Window(40.0, 400.0, "CT abdomen"),
    "bone": Window(400.0, 1800.0, "CT bone"),
    "brain": Window(40.0, 80.0, "CT brain"),
}


def auto_window(values: np.ndarray, name: str = "auto") -> Window:
    """Robust window from the 0.5–99.5 percentiles (MR and other unitless data)."""
    v = np.asarray(values)
    if v.size > 2_000_000:  # percentiles of a strided sample are indistinguishable
        v = v.reshape(-1)[:: v.size // 1_000_000]
    if v.dtype.kind == "f" and not np.isfinite(v).all():
        # NaN/inf voxels (float NIfTI/MHA) would make every percentile NaN: an all-black image.
        v = v[np.isfinite(v)]
        if not v.size:
            return Window(0.5, 1.0, name)
    lo, hi = np.percentile(v, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(v.min()), float(v.max())
    width = max(float(hi - lo), 1.0)
    return Window(float(lo) + width / 2.0, width, name)


AUTO_WINDOW_NAME = "auto percentile"
HU_DETECTED = " (detected from HU range)"


def default_window(modality: str, values: np.ndarray) -> Window:
    if modality.upper() == "CT":
        return CT_PRESETS["mediastinum"]
    return auto_window(values, AUTO_WINDOW_NAME)


def unlabelled_window(values: np.ndarray) -> tuple[Window, ModalitySource, str]:
    """(window, modality source, modality hint) for a volume whose file names no modality
    (NIfTI/NRRD/MHA): a CT in HU gets the CT default window, named as detected, so it shows
    as the same study does from DICOM; anything else keeps the percentile window."""
    if check_hu(values).is_hu:
        w = CT_PRESETS["mediastinum"]
        return Window(w.center, w.width, w.name + HU_DETECTED), ModalitySource.HU_RANGE, "CT"
    return auto_window(values, AUTO_WINDOW_NAME), ModalitySource.NONE, ""


def apply_window(pixels: np.ndarray, window: Window, invert: bool = False) -> np.ndarray:
    """Map modality values to uint8 through a linear window. RGB input passes through.

    ``invert`` (MONOCHROME1: low values are white) flips the ramp, so the window's centre
    and width stay the header's numbers and the stored values are never rewritten.
    """
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        return pixels.astype(np.uint8, copy=False)
    scale = 255.0 / max(window.width, 1e-6)
    if invert:
        out = (np.float32(window.high) - pixels.astype(np.float32, copy=False)) * np.float32(scale)
        np.clip(out, 0.0, 255.0, out=out)
        return out.astype(np.uint8)
    lo = window.low
    out = (pixels.astype(np.float32, copy=False) - np.float32(lo)) * np.float32(scale)
    np.clip(out, 0.0, 255.0, out=out)
    return out.astype(np.uint8)


def slice_rgb(volume: Volume, k: int, window: Window | None = None) -> np.ndarray:
    """Slice ``k`` as an (H, W, 3) uint8 RGB image in the display frame: the model input and
    the acquisition-plane view's pixels (app.study.display_frame)."""
    img = apply_window(display_frame(volume).image(k), window or volume.window, invert=volume.invert_display)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img)
