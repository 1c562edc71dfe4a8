"""Fixtures for the viewer tests: real volumes read once by the real loader."""
from __future__ import annotations

import pytest

from app.study.volume import Volume


def _load_one(path) -> Volume:
    from app.study.loader import load

    result = load([path])
    assert result.volumes, f"could not load {path}: {result.errors}"
    return result.volumes[0]


@pytest.fixture(scope="session")
def mr_volume(mr_dicom_dir) -> Volume:
    return _load_one(mr_dicom_dir)


@pytest.fixture
def view(qtbot):
    from app.ui.slice_view import SliceView

    v = SliceView()
    v.resize(640, 640)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


# main_window: tests/conftest.py (the PACS window tests use it too).


@pytest.fixture
def care(qtbot, tmp_path, monkeypatch, ct_dicom_dir):
    """The main window on the shared CT with the ask/audit controller on a warm tiny pipeline."""
    from app.ui.main_window import MainWindow
    from tests.ui.care_session import isolate_settings, open_ct, tiny_pipeline

    isolate_settings(monkeypatch, tmp_path)
    w = MainWindow()
    w.resize(1400, 900)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    open_ct(qtbot, w, ct_dicom_dir)
    c = w.care
    c.pipelines.put("tiny", tiny_pipeline())
    c.ask.set_profile("tiny")
    yield c
    c.shutdown()
    w.cancel_loading()
