"""What the installed code offers, asked of the import system rather than of files on disk
(inside the PyInstaller bundle the modules live in an archive, not as ``.py`` files)."""
from __future__ import annotations

import importlib.util
import sys

COORDINATOR_FACTORY = "app.pipeline.coordinator.factory"


def module_installed(name: str) -> bool:
    """Whether module ``name`` is importable, found the way ``import`` finds it (source
    folder, zip, PyInstaller bundle) WITHOUT running it or its package's ``__init__``.

    Only the parent package is imported (``find_spec`` does that); the module itself is
    looked up with each import finder on the parent's search path."""
    if name in sys.modules:
        return True
    parent_name, _, _ = name.rpartition(".")
    try:
        if not parent_name:
            return importlib.util.find_spec(name) is not None
        parent = importlib.util.find_spec(parent_name)
    except (ImportError, ValueError):
        return False
    if parent is None or parent.submodule_search_locations is None:
        return False
    path = list(parent.submodule_search_locations)
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is not None and find_spec(name, path) is not None:
            return True
    return False


def coordinator_available() -> bool:
    """CARE-Coord is offered once the coordinator package (and its factory, which the engine
    calls for mode "coord") is part of the installed code. A property of the code, not of
    files on disk (inside the PyInstaller bundle there is no ``factory.py``), and found
    without importing it: the package pulls in OpenCV, which start-up must not load."""
    return module_installed(COORDINATOR_FACTORY)
