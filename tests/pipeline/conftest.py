"""Pipeline fixtures: the tiny random-initialised checkpoints (written once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models_dir() -> Path:
    """``models_dir()`` holding tiny-internvl and tiny-sam3 (built offline, cached by recipe hash)."""
    from tests.tiny_models import ensure_tiny_models

    return ensure_tiny_models()


@pytest.fixture()
def empty_models_dir(tmp_path, monkeypatch) -> Path:
    """A models folder with nothing installed (CARE_MODELS_DIR points at it)."""
    d = tmp_path / "no-models"
    d.mkdir()
    monkeypatch.setenv("CARE_MODELS_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def ct_volume(ct_dicom_dir):
    from app.study.loader import load

    result = load([ct_dicom_dir])
    assert result.volumes, result.errors
    return result.volumes[0]
