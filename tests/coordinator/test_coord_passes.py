"""CARE-Coord calls the answer stage more than once (planned round, the CARE-Flow completion
after a failure, re-grounding rounds): an input already asked in the run is not asked again,
so the experts' vote counts what the model was really shown."""
from __future__ import annotations

import pytest

from app.pipeline.types import EvidenceType as E

from coord_strategy import run_coord
from coord_support import QUESTION, CoordScript, ExpertScript, plan

pytestmark = pytest.mark.slow


def vqa_requests(server) -> list:
    return [r for r in server.chat_requests if "Do not answer the question" not in str(r.body["messages"])]


def test_fallback_completion_reuses_the_input_asked_in_round_0(make_pipeline, experts, coord_server, ct_volume,
                                                               tumour):
    """No boxes, no text segmenter: no mask, so every evidence type is the global request. The
    plan asks for the crop (asked, as global), the review fails twice, the CARE-Flow completion
    adds mask and global: the same input again, so nothing more goes to the expert server."""
    k, _ = tumour
    experts.set_responder(ExpertScript(entity_reply="<think>t</think><answer>right lung</answer>",
                                       answers={"global": ("A dense mass.", "yes", -0.05)}))
    coord_server.set_responder(CoordScript([plan("crop")], ["not json", "still not json"]))
    record = run_coord(make_pipeline(coord_server, uncertainty_threshold=10.0), ct_volume, k, QUESTION)
    assert record.status == "completed", record.errors
    assert [e.kind for e in record.coordinator] == ["plan", "round", "failure", "round", "decision"]
    assert record.coordinator_decision.source == "vote"
    assert [a.evidence for a in record.answers] == [E.CROP, E.MASK, E.GLOBAL]
    assert all(e.fallback for e in record.evidence[:2]) and record.masks == []
    assert len(vqa_requests(experts)) == 1  # the crop's (global) request; the completion asked nothing new
    assert [a.same_input_as for a in record.answers] == [None, 0, 0]
    assert len({a.call_index for a in record.answers}) == 1
    v = record.vote
    assert v.independent_passes == 1 and v.counts == {"yes": 1} and record.final_answer == "yes"
    assert v.detail == "1 independent pass (crop and mask fell back to the global image)"
