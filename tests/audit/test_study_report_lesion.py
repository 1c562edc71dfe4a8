"""The evidence report of a study-scope run shows the 3-D lesion's figures (its own table, from
the one presentation layer), in mm only where the file has spacing."""
from __future__ import annotations

from dataclasses import replace

import pypdf
import pytest

from app.audit.report import build_report
from app.pipeline.run_io import read_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def study_record(study_run):
    return read_run(study_run.out)


def _text(path) -> str:
    return " ".join(" ".join(p.extract_text().split()) for p in pypdf.PdfReader(str(path)).pages)


def test_the_report_shows_the_3d_figures(study_record, tmp_path):
    m = study_record.study.mask3d
    assert m is not None and m.volume_ml is not None
    text = _text(build_report(study_record, tmp_path / "r.pdf"))
    assert "3-D lesion" in text
    assert f"Volume {m.volume_ml:.2f} mL ({m.voxels:,} voxels)" in text
    assert f"Extent slices {m.first + 1}\u2013{m.last + 1}: {m.extent_slices} slices, {m.extent_mm:.1f} mm" in text
    assert f"Largest axial diameter {m.largest_diameter_mm:.1f} mm on slice {m.diameter_slice + 1}" in text
    kept = sorted(p["confidence"] for p in m.per_slice if p["included"])
    assert f"Per-slice mask confidence C {kept[0]:.2f}\u2013{kept[-1]:.2f}" in text
    assert f"over {len(kept)} slices" in text
    assert all(r in text for r in m.stop_reasons)


def test_no_mm_without_spacing(study_record, tmp_path):
    m = study_record.study.mask3d
    study = replace(study_record.study, mask3d=replace(m, volume_ml=None, extent_mm=None, largest_diameter_mm=None))
    text = _text(build_report(replace(study_record, study=study), tmp_path / "r.pdf"))
    assert f"Volume {m.voxels:,} voxels (the file has no spacing: mm unknown)" in text
    assert f"Largest axial diameter {m.largest_diameter_px:.1f} px" in text
    assert " mL" not in text and f"{m.extent_mm:.1f} mm" not in text
