"""Shared fixtures. Qt always runs offscreen in tests, and no test reads or writes the user's
real state: every test gets its own data, config, QSettings and keyring, and the session fails
if anything appeared under the real HOME's care-viewer folders anyway."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.fixtures import user_state
from tests.fixtures.ct_tumour import TumourSite, load_tumour_site
from tests.fixtures.tiny import link_tiny_models, session_models_dir, tiny_pipeline

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data"))

# Before any test (or Qt, or platformdirs) looks: remember the real state, then point every
# per-user location at a session folder. The per-test fixture below narrows it to one test.
_REAL_STATE = user_state.real_state_paths()
_REAL_SNAPSHOT = user_state.snapshot(_REAL_STATE)
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="care-test-session-"))
user_state.redirect_env(_SESSION_DIR)
atexit.register(shutil.rmtree, _SESSION_DIR, True)  # also after --collect-only or a crash


@pytest.fixture(scope="session", autouse=True)
def real_state_guard():
    """Fails the run, naming the paths, if the session wrote to the user's real data or settings."""
    yield
    changed = user_state.changes_since(_REAL_SNAPSHOT, _REAL_STATE)
    if changed:
        pytest.fail("tests wrote to the user's real care-viewer state:\n  " + "\n  ".join(changed), pytrace=False)


@pytest.fixture(autouse=True)
def isolated_user_state(tmp_path_factory, monkeypatch):
    """This test's own data dir, config dir, QSettings folder and in-memory keyring (its
    models folder is the session's, where the tiny checkpoints are linked)."""
    import keyring

    state = tmp_path_factory.mktemp("user-state")
    monkeypatch.setenv("CARE_DATA_DIR", str(state / "data"))
    monkeypatch.setenv("CARE_CONFIG_DIR", str(state / "config"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(state / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(state / "xdg-data"))
    monkeypatch.setenv("CARE_MODELS_DIR", str(_SESSION_DIR / "models"))
    user_state.redirect_qsettings(state / "qsettings")
    previous = keyring.get_keyring()
    keyring.set_keyring(user_state.MemoryKeyring())
    yield state
    keyring.set_keyring(previous)


@pytest.fixture(scope="session")
def tiny_models_dir() -> Path:
    """The session's models folder (``models_dir()``) holding tiny-internvl and tiny-sam3."""
    return link_tiny_models(session_models_dir())


@pytest.fixture(scope="session")
def tiny_pipeline_factory(tiny_models_dir):
    """``make(tokens=24, with_text_segmenter=True)``: a tiny-profile CarePipeline shared by the
    session per set of arguments (the models stay loaded)."""
    return tiny_pipeline


@pytest.fixture(scope="session")
def ct_tumour(shared_data) -> TumourSite:
    """The labelled lung tumour on the shared CT: slice index, tight box, label mask."""
    from tests.fixtures.ct_tumour import TUMOUR_BBOX, TUMOUR_SLICE

    site = load_tumour_site(shared_data)
    assert (site.slice_index, site.box) == (TUMOUR_SLICE, TUMOUR_BBOX), "tests/fixtures/ct_tumour.py is stale"
    return site


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (set CARE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ct_dicom_dir(shared_data: Path) -> Path:
    return shared_data / "ct-chest-lung1" / "dicom"


@pytest.fixture(scope="session")
def ct_volume(ct_dicom_dir):
    """The shared chest CT loaded once per session by the real loader (tests must not modify it)."""
    from app.study.loader import load

    result = load([ct_dicom_dir])
    assert result.volumes, result.errors
    return result.volumes[0]


@pytest.fixture(scope="session")
def mr_dicom_dir(shared_data: Path) -> Path:
    return shared_data / "mr-brain-brain1" / "dicom"


@pytest.fixture()
def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def study_run(tiny_models_dir, ct_dicom_dir):
    """The session's one study-scope ``ask`` on the shared CT (tests/fixtures/study_run.py)."""
    from tests.fixtures.study_run import study_cli_run

    run = study_cli_run(str(ct_dicom_dir))
    assert run.code == 0, run.stdout
    return run


@pytest.fixture
def main_window(qtbot):
    """The real main window, shown (tests/ui and the PACS window tests)."""
    from app.ui.main_window import MainWindow

    w = MainWindow()
    w.resize(1280, 800)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.cancel_loading()
