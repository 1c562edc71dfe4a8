"""Study scope (``ask --scope study``) on the shared CT with the tiny profile: a clinician box on
the tumour propagated in 3-D by the real LiteMedSAM, evidence slices chosen from it, each slice
run through CARE-Flow, the answers aggregated, everything in run.json's ``study`` section."""
from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from app.pipeline.record import RunRecord
from app.pipeline.run_io import read_run
from app.pipeline.vocab import EvidenceSliceRole, LocaliseRoute, RunStatus, StudyRule
from app.study.display import slice_rgb
from tests.fixtures.ct_tumour import TUMOUR_DRAWN_BOX, TUMOUR_SLICE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(study_run):
    return json.loads((study_run.out / "run.json").read_text())


@pytest.fixture(scope="module")
def label_slices(shared_data):
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0
    present = np.flatnonzero(label.reshape(label.shape[0], -1).any(axis=1))
    return int(present[0]), int(present[-1])


def test_the_record_has_a_study_section(data):
    st = data["study"]
    assert data["status"] == "completed"
    assert st["route"] == LocaliseRoute.CLINICIAN_BOX_3D.value and st["asked_from_slice"] == TUMOUR_SLICE
    assert st["num_slices"] == data["input"]["num_slices"] == 48 and st["plane"] == "axial"
    ev = st["evidence_slices"]
    assert 1 <= len(ev) <= st["max_evidence_slices"] == 3 and len(set(ev)) == len(ev)
    assert st["evidence_numbers"] == [k + 1 for k in ev]
    # The run's own sections are the primary slice's: the largest confident cross-section.
    assert st["primary_slice"] == ev[0] == data["input"]["slice_index"]
    confident = [s for s in st["localised"] if s["confident"]]
    assert confident and ev[0] == max(confident, key=lambda s: (s["area_px"], s["confidence"]))["index"]
    assert st["slices"][0]["role"] == EvidenceSliceRole.PRIMARY.value and st["slices"][0]["in_run"]
    assert [s["index"] for s in st["slices"]] == ev
    # Per-slice scores and answers; every non-primary slice's own record is kept whole.
    for s in st["slices"]:
        assert s["status"] == "completed" and s["number"] == s["index"] + 1
        assert s["area_px"] > 0 and 0.0 <= s["confidence"] <= 1.0
        if s["in_run"]:
            assert s["record"] is None and s["answer"] == data["vote"]["winner_raw"]
        else:
            sub = s["record"]
            assert sub["input"]["slice_index"] == s["index"] and sub["status"] == "completed"
            assert sub["final_answer"] == s["answer"] and len(sub["answers"]) == 3
            assert all(m["png"].startswith(f"s{s['index']:03d}_") for m in sub["masks"])
    # The aggregation: its rule, its inputs (one per answered slice), what decided.
    agg = st["aggregation"]
    assert agg["kind"] == "yes/no" and "any evidence slice answering yes" in agg["rule"]
    assert [v["index"] for v in agg["inputs"]] == [s["index"] for s in st["slices"] if s["normalized"]]
    assert agg["decided_by"] in {r.value for r in StudyRule} and agg["detail"]
    assert data["final_answer"] == agg["winner_raw"] and set(agg["winner_slices"]) <= set(ev)
    assert sum(agg["counts"].values()) == len(agg["inputs"])


def test_the_3d_mask_statistics_and_the_evidence_slices_lie_in_the_tumour(data, label_slices):
    first, last = label_slices
    st = data["study"]
    m = st["mask3d"]
    assert m["backend"] == "litemedsam" and m["seed_slice"] == TUMOUR_SLICE
    assert m["first"] <= TUMOUR_SLICE <= m["last"] and m["extent_slices"] == m["last"] - m["first"] + 1
    assert m["volume_ml"] > 0 and m["largest_diameter_mm"] > 0 and m["voxels"] > 0
    assert len(m["stop_reasons"]) == 2 and m["per_slice"]
    # A box on the tumour: every evidence slice is inside the label's slice range.
    assert all(first <= k <= last for k in st["evidence_slices"]), (st["evidence_slices"], (first, last))
    # The clinician's box is the prompt on its own slice; the other slices are prompted with the
    # propagated box, named as such (never "your box").
    seed = next(s for s in st["localised"] if s["index"] == TUMOUR_SLICE)
    assert tuple(seed["box"]) == TUMOUR_DRAWN_BOX
    for s in st["slices"]:
        ents = (s["record"] or data)["entities"]["final"]
        if s["index"] == TUMOUR_SLICE:
            assert any(e["source"] == "clinician" and tuple(e["box"]) == TUMOUR_DRAWN_BOX for e in ents)
        else:
            loc = [e for e in ents if e["source"] == "localised"]
            assert loc and loc[0]["name"] == "clinician region 1 (propagated)"


def test_the_thumbnails_are_the_pixels_the_models_saw(study_run, data, ct_volume):
    from app.study.volume import Window

    st = data["study"]
    w = data["input"]["window"]
    window = Window(float(w["center"]), float(w["width"]), str(w.get("name", "")))
    rec = read_run(study_run.out)
    for s, loaded in zip(st["slices"], rec.study.slices):
        assert (study_run.out / s["image_file"]).is_file()
        assert np.array_equal(loaded.image, slice_rgb(ct_volume, s["index"], window)), s["index"]
        if s["record"] is not None:
            for m in s["record"]["masks"]:
                assert (study_run.out / m["png"]).is_file()
    # The record round-trips exactly.
    assert RunRecord.from_dict(data).to_dict() == data


def test_the_terminal_says_the_study_scope_truthfully(study_run, data):
    nums = sorted(v["index"] + 1 for v in data["study"]["aggregation"]["inputs"])  # what the answer rests on
    assert nums
    expected = f"about the whole study (evidence from axial slices {', '.join(map(str, nums))} of 48)"
    assert f"scope: {expected}" in study_run.stdout
    assert "localised by clinician box propagated in 3-D" in study_run.stdout
    for s in data["study"]["slices"]:
        assert f"  slice {s['number']}: " in study_run.stdout


def test_one_embedding_per_slice(study_run, data):
    """Propagation and the evidence runs share the embedding cache: no slice is embedded twice by
    one segmenter, and the propagation embedded only the slices it looked at."""
    assert study_run.embeddings and max(study_run.embeddings.values()) == 1
    st = data["study"]
    assert st["embedded_slices"] == len(st["mask3d"]["per_slice"]) == len(st["localised"])


def test_the_report_shows_the_evidence_slices(study_run, tmp_path):
    import pypdf

    from app.audit.report import build_report

    rec = read_run(study_run.out)
    pdf = build_report(rec, tmp_path / "study.pdf")
    reader = pypdf.PdfReader(str(pdf))
    text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
    assert "Study scope: the evidence slices" in text
    assert rec.study is not None
    nums = ", ".join(str(v.index + 1) for v in sorted(rec.study.aggregation.inputs, key=lambda v: v.index))
    assert f"about the whole study (evidence from axial slices {nums} of 48)" in text
    assert f"The answer rests on axial slices {nums} of 48" in text
    for s in rec.study.slices:
        assert f"Slice {s.number}/48" in text
    # One thumbnail per evidence slice besides the page-1 figure (and any evidence thumbnails).
    images = sum(len(p.images) for p in reader.pages)
    assert images >= 1 + len(rec.study.slices)


def test_the_audit_store_keeps_the_study_and_its_images(study_run, tmp_path):
    from app.audit.store import AuditStore

    rec = read_run(study_run.out)
    with AuditStore(tmp_path / "audit.sqlite") as store:
        store.finish_run(rec)
        loaded = store.load_run(rec.run_id).record
    assert loaded.study is not None and loaded.to_dict() == rec.to_dict()
    for a, b in zip(loaded.study.slices, rec.study.slices):
        assert a.image is not None and np.array_equal(a.image, b.image)
    sub = next(s for s in rec.study.slices if not s.in_run)
    assert store is not None and sub.record["masks"]
