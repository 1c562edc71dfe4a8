"""The engine end to end on the real chest CT with the tiny profile (real code, random weights)."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from app.pipeline.engine import CarePipeline
from app.pipeline.profiles import load_profile
from app.pipeline.record import Entity, RunRecord
from app.pipeline.run_io import read_run, write_run
from app.pipeline.types import EvidenceType, PipelineError, Stage, WeightsMissingError

pytestmark = pytest.mark.slow
QUESTION = "Is there a mass in the right lung?"
TOKENS = 24  # the tiny model's text is noise: a short budget keeps the tests quick


@pytest.fixture(scope="module")
def pipeline(tiny_pipeline_factory):
    return tiny_pipeline_factory(TOKENS)


@pytest.fixture(scope="module")
def tumour(ct_tumour):
    return ct_tumour.slice_index, ct_tumour.box


@pytest.fixture(scope="module")
def flow_record(pipeline, ct_volume, tumour):
    k, box = tumour
    events = []
    record = pipeline.run(ct_volume, k, QUESTION, boxes=[box], progress=lambda s, m, f: events.append((s, m, f)))
    return record, events


def test_flow_run_produces_a_complete_record(flow_record, ct_volume, tumour):
    record, events = flow_record
    k, box = tumour
    assert record.status == "completed", record.errors
    assert record.errors == [] and record.finished >= record.created
    # Input provenance: the exact pixels that were read.
    expected = hashlib.sha256(np.ascontiguousarray(ct_volume.slice(k)).tobytes()).hexdigest()
    assert record.input.pixel_sha256 == expected and record.input.slice_index == k
    assert record.input.image_size == (512, 512) and record.input.series_uid == ct_volume.series_uid
    # Every stage timed, in order; model time is part of the stage time.
    assert [t.stage for t in record.timings] == [Stage.ENTITIES, Stage.MASKS, Stage.EVIDENCE, Stage.ANSWER, Stage.REVIEW]
    assert all(0.0 <= t.model_seconds <= t.seconds for t in record.timings)
    # Models with provenance (the tiny checkpoints are hashed at load).
    assert {"entity", "vqa", "box_segmenter"} <= set(record.models)
    assert len(record.models["vqa"].weights_sha256) == 64 and record.models["vqa"].role == "vqa"
    assert record.prompt_version
    # The clinician box went through LiteMedSAM and is confident on the real tumour.
    clinician = [m for m in record.masks if m.entity == "clinician region 1"]
    assert len(clinician) == 1 and clinician[0].backend == "litemedsam" and clinician[0].prompt_type == "box"
    m = clinician[0]
    assert m.box == box and m.accepted and m.confidence >= m.tau and m.area_px > 100
    assert all(0.0 <= x.confidence <= 1.0 and x.png for x in record.masks)
    # Three evidence passes from ONE batched VQA call, one prompt/output each.
    assert [e.type for e in record.evidence] == [EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL]
    crop = record.evidence[0]
    assert crop.fallback is None and crop.crop_rect is not None
    x0, y0, x1, y1 = crop.crop_rect
    assert x0 <= m.bbox[0] and y0 <= m.bbox[1] and x1 >= m.bbox[2] and y1 >= m.bbox[3]
    assert len(record.evidence[1].images) == 2 and len(record.evidence[2].images) == 1
    vqa_calls = [c for c in record.calls if c.stage == Stage.ANSWER]
    assert [c.evidence for c in vqa_calls] == [EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL]
    assert len({c.seconds for c in vqa_calls}) == 1  # one batch: the three share one generate call
    assert all(c.prompt_text and c.raw_output and len(c.tokens) == len(c.token_logprobs) for c in vqa_calls)
    assert "<IMG_CONTEXT>" in vqa_calls[0].prompt_text and "Image-2" in vqa_calls[0].prompt
    # Random weights: format violations are recorded, not raised.
    assert len(record.answers) == 3
    assert any(a.format_violations for a in record.answers)
    assert any("answer:" in w for w in record.warnings)
    # The vote records every pass.
    assert record.vote is not None and len(record.vote.votes) == 3
    assert record.final_answer == record.vote.winner_raw
    # Progress is monotone and reaches the end.
    fractions = [f for _, _, f in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_record_survives_disk_round_trip(flow_record, tmp_path):
    record, _ = flow_record
    path = write_run(record, tmp_path / "run")
    files = {p.name for p in path.parent.iterdir()}
    assert {"run.json", "slice.png", "mask_00.png", "evidence_crop.png", "evidence_mask.png"} <= files
    back = read_run(path)
    assert back == record and back.to_dict() == record.to_dict()
    assert np.array_equal(back.masks[0].mask, record.masks[0].mask)
    assert np.array_equal(back.evidence[0].images[1], record.evidence[0].images[1])
    assert isinstance(RunRecord.from_dict(record.to_dict()), RunRecord)


def test_models_stay_warm_and_roles_share_a_checkpoint(pipeline, flow_record):
    vqa = pipeline.backend("vqa")
    assert pipeline.backend("entity") is vqa  # tiny profile: both roles name tiny-internvl
    assert vqa.loaded and pipeline.backend("vqa") is vqa


def test_text_route_via_the_stage_api(pipeline, ct_volume, tumour):
    """A coordinator re-grounds by calling the stage methods on a prepared context."""
    k, _ = tumour
    ctx = pipeline.prepare(ct_volume, k, QUESTION)
    masks = pipeline.segment(ctx, [Entity("lung tumour"), Entity("right lung")])
    assert [(m.entity, m.backend, m.prompt_type) for m in masks] == [
        ("lung tumour", "sam3", "text"), ("right lung", "sam3", "text")]
    assert all(0.0 <= m.confidence <= 1.0 and m.mask.shape == (512, 512) for m in masks)
    assert "segmenter" in ctx.record.models and ctx.record.masks == masks
    items = pipeline.build_evidence(ctx, [EvidenceType.GLOBAL])
    answers = pipeline.answer(ctx, items)
    assert len(answers) == 1 and answers[0].evidence is EvidenceType.GLOBAL


def test_cancel_at_a_stage_boundary_keeps_the_work_done(pipeline, ct_volume):
    checks = []

    def cancel():
        checks.append(1)
        return len(checks) >= 2  # the boundary after entity proposal

    record = pipeline.run(ct_volume, 10, QUESTION, cancel=cancel)
    assert record.status == "cancelled"
    assert [t.stage for t in record.timings] == [Stage.ENTITIES]
    assert len(record.calls) == 1 and record.answers == [] and record.vote is None
    assert record.finished


def test_pipeline_error_fails_the_record(pipeline, ct_volume):
    class Broken:  # a strategy that fails the way a stage does
        mode = "flow"

        def run(self, ctx):
            raise PipelineError("the strategy gave up")

    record = pipeline.run(ct_volume, 10, QUESTION, strategy=Broken())
    assert record.status == "failed" and record.errors == ["the strategy gave up"] and record.finished


def test_unknown_mode_is_refused_at_the_composition_root(pipeline):
    from app.pipeline.strategies import strategy_for

    with pytest.raises(PipelineError, match="unknown mode 'nope'"):
        strategy_for("nope", pipeline)


def test_missing_weights_propagate(empty_models_dir, ct_volume):
    p = CarePipeline(load_profile("tiny"))
    with pytest.raises(WeightsMissingError, match="care-viewer models fetch tiny"):
        p.run(ct_volume, 10, QUESTION)


def test_entity_merges_are_grouped_for_the_record(pipeline):
    """The real MiniLM folds spellings of one entity; the record groups them under the kept name."""
    kept, merges = pipeline.dedup()(["left lung", "The left lung.", "liver", "LEFT LUNG"])
    assert kept == ["left lung", "liver"]
    assert len(merges) == 1 and merges[0].kept == "left lung"
    assert merges[0].merged == ["The left lung.", "LEFT LUNG"] and all(s >= 0.9 for s in merges[0].similarity)
    assert pipeline.dedup().info is not None and pipeline.dedup().info.backend == "minilm"


def test_opposite_sides_kept_apart_with_a_warning(pipeline):
    dedup = pipeline.dedup()
    kept, merges = dedup(["left lung", "right lung"])
    assert kept == ["left lung", "right lung"] and merges == []
    # MiniLM scores this pair at ~0.92: above the merge threshold, kept apart by the side guard.
    assert [(b.kept, b.merged) for b in dedup.last_blocked] == [("left lung", "right lung")]
