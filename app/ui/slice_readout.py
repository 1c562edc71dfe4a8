"""What the slice view reports and offers, independent of drawing: the readout under the
cursor and the window/level presets of a volume."""
from __future__ import annotations

from dataclasses import dataclass

from app.study.display import CT_PRESETS
from app.study.volume import Volume, Window


@dataclass(frozen=True)
class CursorInfo:
    """What is under the mouse (for the status bar)."""

    ijk: tuple[int, int, int]  # voxel index (x, y, z)
    lps: tuple[float, float, float] | None  # mm; None where the image has no patient frame
    value: float | tuple[int, int, int]  # modality units, or RGB
    unit: str  # "HU" for CT, "" otherwise

    def value_text(self) -> str:
        if isinstance(self.value, tuple):
            return "RGB ({}, {}, {})".format(*self.value)
        v = self.value
        txt = f"{v:.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:.2f}"
        return f"{self.unit} {txt}" if self.unit else f"Value {txt}"


def modality_unit(volume: Volume) -> str:
    return "HU" if volume.modality.upper() == "CT" and not volume.is_rgb else ""


def window_presets(volume: Volume | None) -> dict[str, Window]:
    """Presets offered for a volume: the CT ones for CT, always 'default' and 'auto'."""
    out: dict[str, Window] = {}
    if volume is None or volume.is_rgb:
        return out
    out["default"] = Window(volume.window.center, volume.window.width, "default")
    if len(volume.voi_windows) > 1:  # every VOI window the file stores (key V cycles them)
        for i, w in enumerate(volume.voi_windows, 1):
            out[f"file {i}: {w.name}"] = w
    if volume.hu_values:  # also a NIfTI/NRRD CT whose values showed HU
        out.update(CT_PRESETS)
    out["auto"] = Window(0.0, 0.0, "auto")  # computed on demand from the voxels
    return out
