"""Audit fixtures: an isolated data dir per test, and one real tiny-profile run per session."""
from __future__ import annotations

from pathlib import Path

import pytest

QUESTION = "Is there a mass in the right lung?"


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    """CARE_DATA_DIR for this test only: the default AuditStore() and the CLIs use it."""
    d = tmp_path / "care-data"
    monkeypatch.setenv("CARE_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def real_run(ct_volume, ct_tumour, tiny_pipeline_factory):
    """(record, patient): the real engine, tiny profile, on the real chest CT with a clinician
    box on the labelled tumour (so a mask is accepted and crop evidence exists)."""
    k, box = ct_tumour
    record = tiny_pipeline_factory(24).run(ct_volume, k, QUESTION, boxes=[box])
    assert record.status == "completed", record.errors
    assert any(m.accepted for m in record.masks)
    return record, ct_volume.patient
