"""Study scope without a clinician box, on the shared brain MR with the tiny profile: the entity
model's boxes on sampled slices (no text segmenter), the text route per slice (SAM3), progress per
slice and cancel between evidence slices."""
from __future__ import annotations

import pytest

from app.pipeline.record import Entity
from app.pipeline.run_io import read_run, write_run
from app.pipeline.strategies import strategy_for
from app.pipeline.study_scope import study_strategy
from app.pipeline.study_scope.localise import MAX_TEXT_SLICES, SAMPLED_SLICES, evenly_spaced
from app.pipeline.vocab import EntitySource, EvidenceSliceRole, LocaliseRoute, RunStatus

pytestmark = pytest.mark.slow
QUESTION = "Is there a lesion?"


@pytest.fixture(scope="module")
def mr_volume(mr_dicom_dir):
    from app.study.loader import load

    return load([mr_dicom_dir]).volumes[0]


def _run(pipe, volume, k, **kw):
    return pipe.run(volume, k, QUESTION, strategy=study_strategy(pipe, strategy_for("flow", pipe)), **kw)


def test_sampled_entity_boxes_without_a_text_segmenter(tiny_pipeline_factory, mr_volume, tmp_path):
    pipe = tiny_pipeline_factory(with_text_segmenter=False)
    n, k = mr_volume.num_slices, 12
    progress = []
    rec = _run(pipe, mr_volume, k, progress=lambda st, msg, f: progress.append((msg, f)))
    assert rec.status == RunStatus.COMPLETED, rec.errors
    st = rec.study
    assert st.route == LocaliseRoute.SAMPLED_ENTITY_BOXES
    sampled = sorted(set(evenly_spaced(n, SAMPLED_SLICES, ends=False)) | {k})
    assert st.sampled_slices == sampled and [s.index for s in st.localised] == sampled
    assert ", ".join(str(i + 1) for i in sampled) in st.route_note
    # Each sampled slice's entity proposal is recorded (its own partial record, its model call).
    assert [r["input"]["slice_index"] for r in st.localisation_records] == sampled
    assert all(r["calls"] and r["calls"][0]["stage"] == "entities" for r in st.localisation_records)
    # The evidence slices follow the rule from what was found.
    confident = [s for s in st.localised if s.confident]
    if confident:
        assert st.evidence_slices[0] == max(confident, key=lambda s: (s.area_px, s.confidence)).index
    else:
        assert st.evidence_slices[0] == k and st.slices[0].role == EvidenceSliceRole.FALLBACK
    assert len(st.evidence_slices) == 3 and rec.input.slice_index == st.evidence_slices[0]
    # Progress: every sampled slice and every evidence slice is reported, the fraction never goes back.
    for i in sampled:
        assert any(f"sampled slice {i + 1}/{n}" in m for m, _ in progress)
    for j, e in enumerate(st.evidence_slices):
        assert any(f"evidence slice {j + 1} of 3 (slice {e + 1}/{n})" in m for m, _ in progress)
    fractions = [f for _, f in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    write_run(rec, tmp_path / "run")
    assert read_run(tmp_path / "run").to_dict() == rec.to_dict()


def test_text_route_per_slice(tiny_pipeline_factory, mr_volume, monkeypatch):
    pipe = tiny_pipeline_factory()  # the tiny profile's SAM3 text segmenter
    real = pipe.propose_entities

    def named(ctx):  # the random entity model names nothing; a name gives the text route a prompt
        real(ctx)
        ctx.record.entities.final.insert(0, Entity("lesion", None, EntitySource.PROPOSED))
        return list(ctx.record.entities.final)

    monkeypatch.setattr(pipe, "propose_entities", named)
    n = mr_volume.num_slices
    rec = _run(pipe, mr_volume, 12)
    assert rec.status == RunStatus.COMPLETED, rec.errors
    st = rec.study
    assert st.route == LocaliseRoute.TEXT_PER_SLICE and "named lesion on slice 13" in st.route_note
    looked = evenly_spaced(n, MAX_TEXT_SLICES, ends=True)
    assert st.sampled_slices == looked and st.embedded_slices == len(looked)
    assert f"{len(looked)} evenly spaced slices of {n}" in st.route_note
    assert all(s.entity in ("", "lesion") for s in st.localised)
    assert rec.models["segmenter"].backend == "sam3"


def test_cancel_between_evidence_slices(tiny_pipeline_factory, mr_volume):
    pipe = tiny_pipeline_factory(with_text_segmenter=False)
    stop = []

    def progress(stage, msg, f):
        if "evidence slice 2 of" in msg:
            stop.append(True)

    rec = _run(pipe, mr_volume, 12, progress=progress, cancel=lambda: bool(stop))
    assert rec.status == RunStatus.CANCELLED
    st = rec.study
    assert [s.status for s in st.slices] == [RunStatus.COMPLETED, RunStatus.CANCELLED]
    assert st.aggregation is None and rec.final_answer == ""  # the primary's vote is not the study's answer
    assert len(st.evidence_slices) == 3  # chosen; only the first was answered
    from app.audit.present import build_presentation

    head = build_presentation(rec).header
    assert head.scope == f"about the whole study (evidence from axial slice {st.slices[0].number} of 25)"
    assert head.answer_missing == "(cancelled before an answer)"
