"""CARE-Coord is offered when the coordinator is part of the installed code, however the code
is stored (source folder, zip, PyInstaller archive), and greyed out with COORD_TIP otherwise."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from PySide6.QtCore import Qt


def test_available_without_any_file_on_disk(monkeypatch):
    from app.ui.ask_panel import coordinator_available

    imported_before = "app.pipeline.coordinator" in sys.modules
    monkeypatch.setattr(Path, "is_file", lambda self: False)  # as in the bundle: no factory.py
    monkeypatch.setattr(Path, "exists", lambda self: False)
    assert coordinator_available()
    if not imported_before:  # asking did not import the package (it pulls in OpenCV at start-up)
        assert "app.pipeline.coordinator" not in sys.modules


def test_found_inside_a_zip_without_running_the_package(tmp_path, monkeypatch):
    from app.ui.installed_code import module_installed

    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zbundle/__init__.py", "")
        z.writestr("zbundle/coordinator/__init__.py", "raise RuntimeError('must not run')\n")
        z.writestr("zbundle/coordinator/factory.py", "raise RuntimeError('must not run')\n")
    monkeypatch.syspath_prepend(str(archive))
    try:
        assert module_installed("zbundle.coordinator.factory")
        assert module_installed("zbundle.coordinator")
        assert not module_installed("zbundle.coordinator.missing")
        assert not module_installed("zbundle_missing.factory")
        assert "zbundle.coordinator" not in sys.modules  # found, never run
    finally:
        for name in [n for n in sys.modules if n.startswith("zbundle")]:
            del sys.modules[name]


def test_unavailable_greys_out_coord_with_the_tip(qtbot, monkeypatch, tmp_path):
    from app.ui import installed_code
    from app.ui.ask_panel import COORD_TIP, AskPanel, coordinator_available
    from tests.ui.care_session import isolate_settings

    isolate_settings(monkeypatch, tmp_path)
    monkeypatch.setattr(installed_code, "COORDINATOR_FACTORY", "app.pipeline.no_coordinator.factory")
    assert not coordinator_available()
    panel = AskPanel()
    qtbot.addWidget(panel)
    assert not panel.mode.model().item(1).isEnabled()
    assert panel.mode.itemData(1, Qt.ItemDataRole.ToolTipRole) == COORD_TIP
    assert panel.mode.toolTip() == COORD_TIP and panel.mode.currentData() == "flow"
    assert "not part of this build" in COORD_TIP
