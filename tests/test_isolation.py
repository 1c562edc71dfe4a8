"""The root conftest's isolation: no test sees the user's real data, config, settings, keyring
or models folder, and the session guard notices writes to the real state."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.fixtures import user_state


def test_every_per_user_location_is_this_tests_own(isolated_user_state: Path):
    from app.audit.paths import default_db_path
    from app.pipeline.profiles import models_dir
    from app.pipeline.remote.consent import config_dir

    home = Path.home()
    for path in (default_db_path(), config_dir(), Path(os.environ["XDG_CONFIG_HOME"]), Path(os.environ["XDG_DATA_HOME"])):
        assert path.is_relative_to(isolated_user_state), path
    assert not models_dir().is_relative_to(home) and models_dir().name == "models"
    # platformdirs and Qt's config folder resolve into this test's folder too.
    assert all(p.is_relative_to(isolated_user_state) for p in user_state.real_state_paths())


def test_keyring_is_in_memory():
    import keyring

    kr = keyring.get_keyring()
    assert isinstance(kr, user_state.MemoryKeyring)
    keyring.set_password("care-viewer", "https://example.org", "sk-test")
    assert kr.store == {("care-viewer", "https://example.org"): "sk-test"}


def test_qsettings_files_are_under_this_tests_folder(isolated_user_state: Path):
    if "PySide6.QtCore" not in sys.modules:  # Qt not loaded in this session: nothing to redirect
        return
    from PySide6.QtCore import QSettings

    settings = QSettings("CARE", "CARE Viewer")
    settings.setValue("isolation/probe", 1)
    settings.sync()
    assert Path(settings.fileName()).is_relative_to(isolated_user_state), settings.fileName()


def test_guard_reports_created_modified_and_removed_paths(tmp_path: Path):
    data, conf = tmp_path / "share" / "care-viewer", tmp_path / "config" / "CARE.conf"
    (data / "models").mkdir(parents=True)
    (data / "old.txt").write_text("x")
    roots = [data, conf]
    before = user_state.snapshot(roots)
    assert user_state.changes_since(before, roots) == []
    (data / "audit.sqlite3").write_text("run")
    (data / "old.txt").unlink()
    conf.parent.mkdir()
    conf.write_text("[General]\n")
    changed = user_state.changes_since(before, roots)
    assert f"created: {data / 'audit.sqlite3'}" in changed
    assert f"removed: {data / 'old.txt'}" in changed
    assert f"created: {conf}" in changed
    assert f"modified: {data}" in changed
