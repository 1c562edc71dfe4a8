"""Pipeline fixtures (the tiny checkpoints' ``tiny_models_dir`` is in the root conftest)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def empty_models_dir(tmp_path, monkeypatch) -> Path:
    """A models folder with nothing installed (CARE_MODELS_DIR points at it)."""
    d = tmp_path / "no-models"
    d.mkdir()
    monkeypatch.setenv("CARE_MODELS_DIR", str(d))
    return d
