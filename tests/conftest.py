"""Shared fixtures. Qt always runs offscreen in tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data"))


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
