"""Audit fixtures: an isolated data dir per test, and one real tiny-profile run per session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

QUESTION = "Is there a mass in the right lung?"


@pytest.fixture()
def data_dir(tmp_path, monkeypatch) -> Path:
    """CARE_DATA_DIR for this test only: the default AuditStore() and the CLIs use it."""
    d = tmp_path / "care-data"
    monkeypatch.setenv("CARE_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def real_run(ct_volume, shared_data):
    """(record, patient): the real engine, tiny profile, on the real chest CT with a clinician
    box on the labelled tumour (so a mask is accepted and crop evidence exists)."""
    import SimpleITK as sitk

    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from tests.tiny_models import ensure_tiny_models

    ensure_tiny_models()
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0
    k = int(label.reshape(label.shape[0], -1).sum(axis=1).argmax())
    ys, xs = np.nonzero(label[k])
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    pipeline = CarePipeline(load_profile("tiny"), max_new_tokens=24, entity_max_new_tokens=24)
    record = pipeline.run(ct_volume, k, QUESTION, boxes=[box])
    assert record.status == "completed", record.errors
    assert any(m.accepted for m in record.masks)
    return record, ct_volume.patient
