"""Shared pieces of the ask-and-audit GUI tests: one warm tiny pipeline for the whole
session (real tiny checkpoints, real LiteMedSAM) and a main window on the real chest CT."""
from __future__ import annotations

import numpy as np

from tests.fixtures import tiny
from tests.fixtures.ct_tumour import TUMOUR_DRAWN_BOX as TUMOUR_BOX  # noqa: F401 (x0, y0, x1, y1)
from tests.fixtures.ct_tumour import TUMOUR_SLICE

TOKENS = 16  # the tiny model's text is noise; a short budget keeps the runs quick
QUESTION = "Is there a mass in the right lung?"


def tiny_pipeline():
    """The tiny-profile CarePipeline, created once per test session (models stay loaded)."""
    return tiny.tiny_pipeline(TOKENS)


def isolate_settings(monkeypatch, tmp_path) -> None:
    """Audit store, consent and the panel's QSettings under tmp_path (never the user's)."""
    from PySide6.QtCore import QSettings

    import app.ui.ask_form as ask_form

    monkeypatch.setenv("CARE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CARE_CONFIG_DIR", str(tmp_path / "config"))
    ini = str(tmp_path / "settings.ini")
    monkeypatch.setattr(ask_form, "settings", lambda: QSettings(ini, QSettings.Format.IniFormat))


def open_ct(qtbot, window, ct_dicom_dir) -> None:
    """Open the shared CT with the real loader and show the tumour slice."""
    with qtbot.waitSignal(window.series_loaded, timeout=120_000):
        window.open_paths([ct_dicom_dir])
    window.view.set_slice(TUMOUR_SLICE)


def settle(qtbot, care, timeout: int = 30_000) -> None:
    """Wait until every queued audit-store call has run and its result reached the GUI."""
    qtbot.waitUntil(lambda: care.audit_io.idle, timeout=timeout)


def screen_point(view, col: float, row: float):
    """Widget point of the centre of display-frame pixel (col, row) on the acquisition-plane
    view (there a screen pixel is a display-frame pixel)."""
    from PySide6.QtCore import QPoint

    p = view.image_to_widget(col + 0.5, row + 0.5)
    return QPoint(round(p.x()), round(p.y()))


def mask_centre(mask: np.ndarray) -> tuple[int, int]:
    """A pixel well inside a mask (the deepest point of its distance transform)."""
    import cv2

    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return int(x), int(y)


def without_weights(care, tmp_path, monkeypatch) -> None:
    """The models folder empty (a fresh install): the tiny profile's next run fails for weights."""
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("CARE_MODELS_DIR", str(empty))
    from app.ui.run_worker import PipelineCache

    care.pipelines = PipelineCache()
    care.ask.reload_profiles()
    care.ask.set_profile("tiny")
