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
