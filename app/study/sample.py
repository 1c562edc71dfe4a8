"""The bundled sample study (a small RLE-compressed chest CT, see resources/sample/)."""
from __future__ import annotations

import sys
from pathlib import Path

SAMPLE_NAME = "ct-chest-lung1"


def resources_dir() -> Path:
    """``resources/`` of a checkout or installed tree, or inside a PyInstaller bundle."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    # app/study/sample.py -> repository root
    return Path(__file__).resolve().parents[2] / "resources"


def sample_study_path() -> Path:
    """Folder of the sample DICOM series (load it with ``app.study.loader.load``)."""
    return resources_dir() / "sample" / SAMPLE_NAME
