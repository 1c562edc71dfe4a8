"""A study-scope run (``ask --scope study`` with a box on the shared CT's tumour) exported as a
TID 1500 SR: the 3-D lesion's figures as UCUM measurements, the evidence slices on their own
source instances, the aggregation rule and result, read back with read_care_sr and validated."""
from __future__ import annotations

import json
import shutil
from statistics import median

import numpy as np
import pydicom
import pytest

from app.dicom_export import ExportKind, build_run_objects, read_care_sr
from app.dicom_export.bundle import write_bundle
from app.pipeline.run_io import read_run
from tests.dicom_export.conftest import dciodvfy

pytestmark = pytest.mark.slow


def _uid_of_slice(ct_volume, k: int) -> str:
    return str(pydicom.dcmread(ct_volume.source_files[k], stop_before_pixels=True).SOPInstanceUID)


def test_the_sr_carries_the_study_scope(study_run, ct_volume, tmp_path):
    record = read_run(study_run.out)
    st = record.study
    assert st is not None and st.mask3d is not None
    bundle = build_run_objects(study_run.out, [ExportKind.SR])
    (path,) = write_bundle(bundle, tmp_path)
    errors, _ = dciodvfy(path)
    assert not errors, errors
    summary = read_care_sr(pydicom.dcmread(path))
    got = summary.study
    assert got is not None
    # Evidence slices: each on the instance the volume has at that slice (checked against the
    # pixels too: the instance's pixels are the volume's slice).
    assert [s.number for s in got.slices] == [s.number for s in st.slices]
    for s, e in zip(got.slices, st.slices):
        assert s.sop_instance_uid == _uid_of_slice(ct_volume, e.index)
        ds = pydicom.dcmread(ct_volume.source_files[e.index])
        raw = ct_volume.array[e.index].squeeze()
        hu = ds.pixel_array * float(getattr(ds, "RescaleSlope", 1)) + float(getattr(ds, "RescaleIntercept", 0))
        assert np.allclose(hu, raw)
        assert s.confidence == pytest.approx(e.confidence) and s.area_px == e.area_px
        assert s.counted == (e.index in {v.index for v in st.aggregation.inputs})
        assert s.gave_answer == (e.index in st.aggregation.winner_slices)
    assert sum(s.gave_answer for s in got.slices) == len(st.aggregation.winner_slices) >= 1
    # The aggregation: rule and result as the record has them.
    assert got.rule == st.aggregation.rule and got.result.startswith(st.aggregation.winner_raw.split()[0][:8])
    assert st.aggregation.decided_by.value in got.result
    assert got.scope.startswith("about the whole study (evidence from axial slices")
    assert len(got.slice_answers) == len(st.slices)
    # The 3-D lesion: proper measurements with UCUM units, on every slice it covers.
    m, lesion = st.mask3d, got.lesion
    assert lesion is not None
    assert lesion.volume_ml == pytest.approx(m.volume_ml) and lesion.units["118565006"] == "ml"
    assert lesion.extent_mm == pytest.approx(m.extent_mm) and lesion.units["EXTENT-MM"] == "mm"
    assert lesion.largest_diameter_mm == pytest.approx(m.largest_diameter_mm) and lesion.units["81827009"] == "mm"
    assert (lesion.extent_slices, lesion.voxels) == (m.extent_slices, m.voxels)
    assert (lesion.seed, lesion.first, lesion.last) == (m.seed_slice + 1, m.first + 1, m.last + 1)
    kept = [p["confidence"] for p in m.per_slice if p["included"]]
    assert (lesion.c_min, lesion.c_median, lesion.c_max) == pytest.approx((min(kept), median(kept), max(kept)))
    assert lesion.sop_instance_uids == tuple(_uid_of_slice(ct_volume, k) for k in range(m.first, m.last + 1))
    assert got.stops == ", ".join(m.stop_reasons)
    # The SR's evidence lists every referenced instance.
    sr = pydicom.dcmread(path)
    listed = {i.ReferencedSOPInstanceUID for st_ in sr.CurrentRequestedProcedureEvidenceSequence
              for se in st_.ReferencedSeriesSequence for i in se.ReferencedSOPSequence}
    assert set(lesion.sop_instance_uids) | {s.sop_instance_uid for s in got.slices} <= listed


def test_no_mm_without_spacing(study_run, tmp_path):
    """A lesion whose file had no spacing (lesion_geometry says None): no volume or mm is written."""
    folder = tmp_path / "run"
    shutil.copytree(study_run.out, folder)
    data = json.loads((folder / "run.json").read_text())
    for k in ("volume_ml", "extent_mm", "largest_diameter_mm"):
        data["study"]["mask3d"][k] = None
    (folder / "run.json").write_text(json.dumps(data))
    bundle = build_run_objects(folder, [ExportKind.SR])
    lesion = read_care_sr(bundle.datasets[0]).study.lesion
    assert lesion.volume_ml is None and lesion.extent_mm is None and lesion.largest_diameter_mm is None
    assert "mm" not in lesion.units.values() and "ml" not in lesion.units.values()
    assert lesion.voxels == data["study"]["mask3d"]["voxels"] and lesion.largest_diameter_px > 0


def test_a_slice_run_has_no_study_group(ct_run):
    summary = read_care_sr(build_run_objects(ct_run.folder, [ExportKind.SR]).datasets[0])
    assert summary.study is None


def test_the_export_says_what_the_seg_holds(study_run):
    """The 3-D mask's voxels are not in the record: the SEG is the primary slice's, and says so."""
    record = read_run(study_run.out)
    bundle = build_run_objects(study_run.out, [ExportKind.SEG, ExportKind.SR])
    m = record.study.mask3d
    assert any(w.startswith(f"the SEG holds the masks of slice {record.input.slice_index + 1} only")
               and f"slices {m.first + 1}\u2013{m.last + 1}" in w for w in bundle.warnings), bundle.warnings
    seg = bundle.of_kind(ExportKind.SEG)
    assert seg is not None and int(seg.NumberOfFrames) == 1
