"""The tiny random-weights profile: its local coordinator (the already-loaded VQA model)
emits noise, never valid JSON, so the run must fall back to CARE-Flow with nothing lost; and
a tiny-profile record and a remote (loopback) record have the same structure."""
from __future__ import annotations

import dataclasses

import pytest

from app.pipeline.types import EvidenceType as E
from app.pipeline.types import Stage

from coord_strategy import coord_strategy, run_coord
from coord_support import QUESTION

pytestmark = pytest.mark.slow
TOKENS = 24


@pytest.fixture(scope="module")
def tiny_pipeline(tiny_pipeline_factory):
    """The tiny profile without its text-route segmenter (tiny SAM3 costs ~10 s per run on a
    shared CPU and is covered by tests/pipeline); LiteMedSAM segments the clinician box."""
    return tiny_pipeline_factory(TOKENS, with_text_segmenter=False)


_DATA_KEYED = {"counts", "prob_stats", "window", "detail", "models"}  # keyed by data (or by what ran)


def _same_structure(a, b, where="record") -> None:
    """Same keys at every level; a list compares by its items (an empty list matches any),
    values are not compared (random weights vs scripted replies)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{where}: {sorted(a.keys() ^ b.keys())}"
        for k in a:
            if k not in _DATA_KEYED:
                _same_structure(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        for x in a[:1]:
            for y in b[:1]:
                _same_structure(x, y, f"{where}[]")
    else:
        assert (a is None or b is None) or type(a) is type(b) or {type(a), type(b)} <= {int, float}, where


def test_tiny_local_coordinator_falls_back_to_care_flow(tiny_pipeline, ct_volume, tumour):
    k, box = tumour
    record = run_coord(tiny_pipeline, ct_volume, k, QUESTION, boxes=[box])
    assert record.status == "completed", record.errors
    coordinator = coord_strategy(tiny_pipeline).coordinator
    assert coordinator.backend.vlm is tiny_pipeline.backend("vqa")  # nothing extra loaded
    assert coordinator.config.max_new_tokens == 48  # from the tiny profile's coordinator role
    assert (coordinator.config.may_revise, coordinator.config.reground) == (False, False)  # local: review only
    kinds = [e.kind for e in record.coordinator]
    assert kinds == ["failure", "round", "decision"], record.coordinator
    failure = record.coordinator[0]
    assert failure.detail["step"] == "plan" and failure.detail["replies"] == 2
    call = record.calls[failure.call_index]
    assert call.role == "coordinator" and "--- retry ---" in call.raw_output  # both random replies kept
    assert "<IMG_CONTEXT>" not in call.prompt  # the prompt as written; the image is a separate input
    assert [a.evidence for a in record.answers] == [E.CROP, E.MASK, E.GLOBAL]
    d = record.coordinator_decision
    assert d.source == "vote" and record.final_answer == record.vote.winner_raw and "after 2 tries" in d.failure
    info = record.models["coordinator"]
    assert info.backend == "internvl" and info.weights_sha256 == record.models["vqa"].weights_sha256 != ""


def test_tiny_and_remote_records_have_the_same_structure(tiny_pipeline, make_pipeline, default_experts, ct_volume,
                                                         tumour):
    k, box = tumour
    tiny = tiny_pipeline.run(ct_volume, k, QUESTION, boxes=[box])
    remote = make_pipeline().run(ct_volume, k, QUESTION, boxes=[box])
    for r in (tiny, remote):
        assert r.status == "completed", r.errors
        assert [t.stage for t in r.timings] == [Stage.ENTITIES, Stage.MASKS, Stage.EVIDENCE, Stage.ANSWER,
                                                Stage.REVIEW]
        assert [c.stage for c in r.calls] == [Stage.ENTITIES] + [Stage.ANSWER] * 3
        assert [e.type for e in r.evidence] == [E.CROP, E.MASK, E.GLOBAL]
        assert all(len(c.tokens) == len(c.token_logprobs) > 0 for c in r.calls)
    _same_structure(tiny.to_dict(), remote.to_dict())
    assert tiny.entities.final and remote.entities.final and tiny.final_answer and remote.final_answer
    roles = {"entity", "vqa", "box_segmenter"}  # + "encoder" when two or more entities were de-duplicated
    assert roles <= set(tiny.models) and roles <= set(remote.models) and set(remote.models) - roles <= {"encoder"}
    assert remote.models["vqa"].backend == "remote" and tiny.models["vqa"].backend == "internvl"
    # The loopback server's well-formed <think>/<answer> replies parse cleanly, with log-probs.
    assert all(not a.format_violations and a.mean_answer_prob is not None for a in remote.answers)
    assert [a.answer for a in remote.answers] == ["yes", "no", "yes"] and remote.final_answer == "yes"
    # The three remote passes went out together (the backend sends them concurrently).
    assert remote.calls[1].prompt_text.startswith("[") and "sha256" in remote.calls[1].prompt_text
    assert dataclasses.asdict(tiny.input).keys() == dataclasses.asdict(remote.input).keys()
