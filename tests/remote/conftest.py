"""Fixtures for the remote (thin-client) tests: a loopback chat server per test, an isolated
consent/config directory, no API key from the developer's environment, and real CT pixels."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback_server import LoopbackChatServer  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch) -> Path:
    cfg = tmp_path / "care-config"
    monkeypatch.setenv("CARE_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("CARE_DEPT_API_KEY", raising=False)
    return cfg


@pytest.fixture()
def server():
    with LoopbackChatServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def ct_slice_and_mask(shared_data: Path, ct_tumour) -> tuple[np.ndarray, np.ndarray]:
    """The lung CT slice with the most tumour voxels (lung window, RGB uint8) and its
    tumour mask as a separate 0/255 RGB image: the two images a CARE mask-evidence request sends."""
    import SimpleITK as sitk

    from app.study.display import CT_PRESETS, apply_window

    folder = shared_data / "ct-chest-lung1"
    vol = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "lung1_image.nrrd")))
    img = apply_window(vol[ct_tumour.slice_index], CT_PRESETS["lung"])
    mask = np.where(ct_tumour.mask, 255, 0).astype(np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2), np.repeat(mask[:, :, None], 3, axis=2)
