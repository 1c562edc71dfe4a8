"""Confidence C = 1 - H/log 2 over the mask bbox expanded by 10 %: analytic cases, no models."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.pipeline.segmentation import EntityPrompt, MaskResult, segment_entities
from app.pipeline.segmentation.confidence import (
    DEFAULT_TAU,
    binary_entropy,
    expand_box,
    mask_bbox,
    score_mask,
)
from app.pipeline.types import ModelInfo


def _hb(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def _score(prob, tau=DEFAULT_TAU) -> MaskResult:
    return score_mask(prob, entity="lesion", backend="test", prompt_type="box", box=(0, 0, 4, 4), tau=tau)


def test_all_half_is_zero_confidence_and_rejected():
    r = _score(np.full((64, 64), 0.5, np.float32))
    assert r.area_px == 64 * 64  # 0.5 >= 0.5 is foreground
    assert r.confidence == pytest.approx(0.0, abs=1e-6)
    assert not r.accepted
    assert r.stats.entropy == pytest.approx(math.log(2), rel=1e-6)


def test_hard_zero_one_map_is_full_confidence():
    prob = np.zeros((100, 100), np.float32)
    prob[20:40, 30:70] = 1.0
    r = _score(prob)
    assert r.confidence == pytest.approx(1.0, abs=1e-5)
    assert r.accepted
    assert r.area_px == 20 * 40
    assert r.bbox == (30, 20, 70, 40)
    assert r.mask.dtype == bool and r.mask.shape == (100, 100)


@pytest.mark.parametrize("p", [0.55, 0.7, 0.9, 0.99])
def test_constant_map_matches_analytic_entropy(p):
    r = _score(np.full((50, 80), p, np.float32))
    assert r.confidence == pytest.approx(1 - _hb(p) / math.log(2), abs=1e-5)
    assert r.stats.mean == pytest.approx(p, abs=1e-6)
    assert r.stats.min == pytest.approx(p, abs=1e-6) and r.stats.max == pytest.approx(p, abs=1e-6)


def test_entropy_is_measured_on_the_expanded_bbox_not_the_image():
    """Uncertain boundary ring inside the 10 % margin counts; far background does not."""
    prob = np.zeros((200, 200), np.float32)
    prob[50:150, 50:150] = 1.0  # mask bbox 100 x 100 -> window (40, 40, 160, 160)
    prob[40:50, 40:160] = 0.3  # uncertain band inside the margin
    r = _score(prob)
    assert r.window == (40, 40, 160, 160)
    band = 10 * 120
    expected_h = band * _hb(0.3) / (120 * 120)
    assert r.confidence == pytest.approx(1 - expected_h / math.log(2), abs=1e-5)
    # The same band outside the window leaves C at 1: whole-image averaging is not used.
    prob2 = np.zeros((200, 200), np.float32)
    prob2[50:150, 50:150] = 1.0
    prob2[0:10, :] = 0.3
    assert _score(prob2).confidence == pytest.approx(1.0, abs=1e-5)


def test_bbox_expansion_is_ten_percent_per_side_and_clipped():
    assert expand_box((200, 100, 300, 150), (512, 512)) == (190, 95, 310, 155)
    assert expand_box((0, 0, 50, 20), (100, 100)) == (0, 0, 55, 22)  # clipped at the image edge
    assert expand_box((10, 10, 11, 11), (100, 100)) == (9, 9, 12, 12)  # rounded up: a border always exists
    assert expand_box((90, 90, 100, 100), (100, 100)) == (89, 89, 100, 100)


def test_mask_bbox():
    m = np.zeros((10, 12), bool)
    assert mask_bbox(m) is None
    m[2:5, 3:9] = True
    assert mask_bbox(m) == (3, 2, 9, 5)


def test_tau_filtering():
    prob = np.full((40, 40), 0.9, np.float32)  # C = 1 - Hb(0.9)/log 2 ~= 0.531
    c = 1 - _hb(0.9) / math.log(2)
    assert not _score(prob, tau=0.70).accepted
    assert _score(prob, tau=0.5).accepted
    assert _score(prob, tau=c - 1e-6).accepted
    assert not _score(prob, tau=c + 1e-6).accepted


def test_empty_mask_is_rejected_with_zero_confidence():
    r = _score(np.full((32, 32), 0.2, np.float32))
    assert r.area_px == 0 and r.bbox is None and r.window is None and r.stats is None
    assert r.confidence == 0.0 and not r.accepted
    assert not _score(np.full((32, 32), 0.2, np.float32), tau=0.0).accepted


def test_binary_entropy_bounds():
    h = binary_entropy(np.array([0.0, 1.0, 0.5]))
    assert h[0] == pytest.approx(0.0, abs=1e-5) and h[1] == pytest.approx(0.0, abs=1e-5)
    assert h[2] == pytest.approx(math.log(2))


def test_to_dict_is_json_without_arrays():
    prob = np.zeros((30, 40), np.float32)
    prob[5:10, 5:20] = 0.95
    r = score_mask(prob, entity="liver", backend="sam3", prompt_type="text", box=None, tau=0.6)
    d = json.loads(json.dumps(r.to_dict()))
    assert d["entity"] == "liver" and d["prompt_type"] == "text" and d["box"] is None
    assert d["image_size"] == [40, 30] and d["area_px"] == 75 and d["bbox"] == [5, 5, 20, 10]
    assert set(d["stats"]) == {"mean", "min", "max", "entropy"}
    assert "mask" not in d and "probability" not in d


class _FixedBackend:
    """A backend whose maps are computed from the prompt box (exercises segment_entities' routing)."""

    supports_text = False
    supports_box = True

    def __init__(self):
        self.info = ModelInfo(role="segmenter", backend="fixed", repo_id="none")
        self.keys = []

    def set_image(self, image_rgb, key):
        self.shape = image_rgb.shape[:2]
        self.keys.append(key)

    def predict(self, prompts):
        out = []
        for p in prompts:
            m = np.zeros(self.shape, np.float32)
            x0, y0, x1, y1 = p.box
            m[y0:y1, x0:x1] = 1.0
            out.append(m)
        return out


def test_segment_entities_routes_and_scores():
    be = _FixedBackend()
    img = np.zeros((64, 48, 3), np.uint8)
    res = segment_entities(be, img, "k", [EntityPrompt("a", (0, 0, 10, 10)), EntityPrompt("b", (5, 5, 6, 30))])
    assert be.keys == ["k"]
    assert [r.entity for r in res] == ["a", "b"]
    assert [r.area_px for r in res] == [100, 25]
    assert all(r.prompt_type == "box" and r.accepted for r in res)
    from app.pipeline.types import PipelineError

    with pytest.raises(PipelineError):
        segment_entities(be, img, "k", [EntityPrompt("no box")])


def test_embedding_cache_keeps_the_most_recent_slices():
    from app.pipeline.segmentation.embedding_cache import EmbeddingCache

    cache: EmbeddingCache[str] = EmbeddingCache(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # touching "a" makes "b" the oldest
    cache.put("c", "C")
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C" and len(cache) == 2
