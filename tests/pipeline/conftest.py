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


@pytest.fixture(scope="module")
def tiny_vqa_backend(tiny_models_dir):
    """The tiny profile's VQA backend (real InternVL code on the tiny checkpoint), loaded once a module."""
    from app.pipeline.backends.internvl import clear_vlm_cache, get_vlm
    from app.pipeline.profiles import load_profile

    clear_vlm_cache()
    b = get_vlm(load_profile("tiny").get("vqa"), tiny_models_dir, device="cpu", profile="tiny")
    b.ensure_loaded()
    yield b
    clear_vlm_cache()
