"""CARE-Coord end to end on the real chest CT: the expert stages and the coordinator on two
loopback chat servers (real sockets), real LiteMedSAM masks, the real engine. The servers'
replies are scripted, so every branch (accept, choose, revise, another round, re-grounding,
fallback) is exercised deterministically."""
from __future__ import annotations

import json

import pytest

from app.pipeline.record import RunRecord
from app.pipeline.run_io import read_run, write_run
from app.pipeline.types import EvidenceType as E
from app.pipeline.types import Stage
from loopback_server import Behaviour

from coord_strategy import coord_strategy, run_coord
from coord_support import QUESTION, CoordScript, norm1000, plan, review

pytestmark = pytest.mark.slow


def kinds(record: RunRecord) -> list[str]:
    return [e.kind for e in record.coordinator]


def coord_bodies(server, name: str) -> list[dict]:
    return [r.body for r in server.chat_requests
            if (r.body.get("response_format") or {}).get("json_schema", {}).get("name") == name]


def user_text(body: dict) -> str:
    content = body["messages"][1]["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_plan_review_accept_text_only(make_pipeline, coord_server, default_experts, ct_volume, tumour):
    k, _ = tumour
    coord_server.set_responder(CoordScript([plan("crop", "mask", "global")], [review("accept", "A1")]))
    record = run_coord(make_pipeline(coord_server), ct_volume, k, QUESTION)
    assert record.status == "completed", record.errors
    assert kinds(record) == ["plan", "round", "review", "decision"]
    # Masks: the tumour and trachea accepted, the vertebra rejected (all reported to the coordinator).
    assert [(m.entity, m.accepted) for m in record.masks] == [
        ("lung tumour", True), ("trachea", True), ("vertebra", False)]
    assert [a.answer for a in record.answers] == ["yes", "no", "yes"]
    assert record.vote.winner == "yes" and record.final_answer == "yes"
    d = record.coordinator_decision
    assert (d.source, d.candidate, d.changed_vote, d.vote_answer, d.extra_rounds) == ("review", "A1", False, "yes", 0)
    p = record.coordinator[0].plan
    assert p.evidence == [E.CROP, E.MASK, E.GLOBAL] and not p.images_sent
    assert "withheld" in record.coordinator[0].detail["images"]
    # What went over the wire: text only, schema in response_format, CoT and mask statistics in the prompt.
    (plan_body,) = coord_bodies(coord_server, "care_plan")
    (review_body,) = coord_bodies(coord_server, "care_review")
    for body in (plan_body, review_body):
        assert isinstance(body["messages"][1]["content"], str)
    text = user_text(plan_body)
    assert QUESTION in text and '"vertebra"' in text and "rejected (below tau=0.70)" in text and "bbox [0." in text
    assert ct_volume.patient.name not in text if ct_volume.patient.name else True
    rtext = user_text(review_body)
    assert "[A1] round 0, crop evidence" in rtext and "round soft-tissue mass" in rtext
    assert "[A2] round 0, mask evidence" in rtext and 'majority vote is "yes" (2 of 3 independent passes agree)' in rtext
    schema = review_body["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["candidate"]["enum"] == ["A1", "A2", "A3"]
    # Every coordinator call is in the record, timed as the review stage.
    calls = [c for c in record.calls if c.role == "coordinator"]
    assert len(calls) == 2 and all(c.stage is Stage.REVIEW and c.raw_output and not c.image_files for c in calls)
    assert record.coordinator[0].call_index == record.calls.index(calls[0])
    assert record.models["coordinator"].backend == "remote" and record.models["coordinator"].repo_id == "gpt-5"


def test_review_chooses_another_candidate(make_pipeline, coord_server, default_experts, ct_volume, tumour):
    k, _ = tumour
    judgements = [
        {"candidate": "A1", "cot_supports_answer": False, "addresses_question": True, "note": "crop shows trachea"},
        {"candidate": "A2", "cot_supports_answer": True, "addresses_question": True, "note": "consistent"},
        {"candidate": "A3", "cot_supports_answer": False, "addresses_question": True, "note": "unsupported"},
    ]
    coord_server.set_responder(CoordScript([plan("crop", "mask", "global")],
                                           [review("choose", "A2", judgements=judgements)]))
    record = run_coord(make_pipeline(coord_server), ct_volume, k, QUESTION)
    assert record.final_answer == "no" and record.vote.winner == "yes"
    d = record.coordinator_decision
    assert d.changed_vote and d.candidate == "A2" and d.rests_on == ["A2"] and d.vote_answer == "yes"
    rv = record.coordinator[2].review
    assert rv.action == "choose" and [j.cot_supports_answer for j in rv.judgements] == [False, True, False]


def test_invalid_reference_is_retried_then_revised(make_pipeline, coord_server, default_experts, ct_volume, tumour):
    k, _ = tumour
    bad = review("revise", "A1", rests_on=["A9"], final_answer="No mass")  # A9 does not exist
    good = review("revise", "A2", rests_on=["A2", "A3"], final_answer="No mass")
    coord_server.set_responder(CoordScript([plan("crop", "mask", "global")], [bad, good]))
    record = run_coord(make_pipeline(coord_server), ct_volume, k, QUESTION)
    assert record.final_answer == "No mass" and record.coordinator_decision.rests_on == ["A2", "A3"]
    assert record.coordinator_decision.changed_vote
    review_event = record.coordinator[2]
    assert review_event.detail["tries"] == 2
    assert "A9" in record.calls[review_event.call_index].raw_output  # both replies kept
    second = coord_bodies(coord_server, "care_review")[1]["messages"]
    assert second[-1]["role"] == "user" and "A9" in second[-1]["content"]


def test_rounds_are_bounded(make_pipeline, coord_server, default_experts, ct_volume, tumour):
    """The review keeps asking for more; after two extra rounds the schema no longer offers
    another round, the out-of-budget request is rejected and the retry must decide."""
    k, _ = tumour
    coord_server.set_responder(CoordScript([plan("crop")], [
        review("another_round", "A1", next_evidence=["mask"]),
        review("another_round", "A1", next_entities=["trachea"], next_evidence=["crop"]),
        review("another_round", "A1", next_evidence=["global"]),  # not allowed any more
        review("accept", "A1"),
    ]))
    record = run_coord(make_pipeline(coord_server, uncertainty_threshold=10.0), ct_volume, k, QUESTION)
    assert record.status == "completed"
    assert kinds(record) == ["plan", "round", "review", "round", "review", "round", "review", "decision"]
    rounds = [e.round for e in record.coordinator if e.round is not None]
    assert [(r.round, r.evidence) for r in rounds] == [(0, [E.CROP]), (1, [E.MASK]), (2, [E.CROP])]
    assert rounds[2].entities == ["trachea"]  # the crop of round 2 was built from the trachea mask alone
    crop2 = record.evidence[rounds[2].answer_indices[0]]
    assert crop2.type is E.CROP and crop2.entities == ["trachea"] and crop2.image_files[-1] == "evidence_crop_2.png"
    bodies = coord_bodies(coord_server, "care_review")
    assert len(bodies) == 4
    enums = [b["response_format"]["json_schema"]["schema"]["properties"]["action"]["enum"] for b in bodies]
    assert "another_round" in enums[0] and "another_round" in enums[1] and "another_round" not in enums[2]
    assert '"another_round"' not in user_text(bodies[2])
    d = record.coordinator_decision
    assert d.extra_rounds == 2 and d.source == "review" and record.coordinator[-2].detail["tries"] == 2


def test_uncertain_answer_is_regrounded_before_review(make_pipeline, coord_server, default_experts, ct_volume, tumour,
                                                      tmp_path):
    k, _ = tumour
    default_experts.later = {
        "crop_1": ("Something dense near the hilum, hard to say.", "no", -1.2),  # uncertain
        "crop_2": ("The zoomed tumour is a spiculated mass.", "yes", -0.05),
    }
    coord_server.set_responder(CoordScript([plan("crop")], [review("choose", "A2")]))
    record = run_coord(make_pipeline(coord_server, max_extra_rounds=1, reground=True), ct_volume, k, QUESTION)
    assert kinds(record) == ["plan", "round", "reground", "round", "review", "decision"]
    rg = record.coordinator[2].reground
    assert rg.uncertainty == pytest.approx(1.2) and rg.threshold == pytest.approx(0.4)
    assert rg.action == "next_entity" and rg.entities == ["trachea"] and rg.candidates == ["A1"]
    assert "1.200 > threshold 0.4" in rg.reason and "looked at 'lung tumour'; looking at 'trachea' alone" in rg.reason
    # Round 0 cropped around the most confident accepted mask (the tumour), round 1 the trachea alone.
    r0, r1 = record.evidence
    assert r0.entities == ["lung tumour"] and r0.crop_entity == "lung tumour" and r1.entities == ["trachea"]
    assert r0.crop_rect != r1.crop_rect
    # The review saw both rounds; the expert vote (round 0) said "no", the coordinator "yes".
    rtext = user_text(coord_bodies(coord_server, "care_review")[0])
    assert "[A2] round 1, crop evidence; entities: trachea" in rtext
    assert record.vote.winner == "no" and record.final_answer == "yes" and record.coordinator_decision.changed_vote

    # The typed timeline survives JSON and the run folder.
    again = RunRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record and again.coordinator[2].reground == rg
    write_run(record, tmp_path / "run")
    loaded = read_run(tmp_path / "run")
    assert loaded.coordinator == record.coordinator and loaded.coordinator_decision == record.coordinator_decision
    assert (tmp_path / "run" / "evidence_crop_2.png").is_file()


def test_threshold_from_the_profile_disables_regrounding(make_pipeline, coord_server, default_experts, ct_volume,
                                                           tumour):
    k, _ = tumour
    default_experts.later = {"crop_1": ("Hard to say.", "no", -1.2)}
    coord_server.set_responder(CoordScript([plan("crop")], [review("accept", "A1")]))
    record = run_coord(make_pipeline(coord_server, uncertainty_threshold=1.5, reground=True), ct_volume, k, QUESTION)
    assert kinds(record) == ["plan", "round", "review", "decision"]
    assert record.coordinator[1].detail["uncertainty"] == "1.200"


def test_looser_crop_twice_then_review(make_pipeline, coord_server, experts, ct_volume, tumour):
    """One accepted mask: the re-grounding widens the crop (0.25 -> 0.5 -> 1.0) while the
    answer stays uncertain, and stops at the two-round bound."""
    from coord_support import ExpertScript

    k, box = tumour
    experts.set_responder(ExpertScript(
        entity_reply=f"<think>t</think><answer><ref>lung tumour</ref><box>[{norm1000(box)}]</box></answer>",
        answers={"crop": ("Cannot tell.", "maybe", -2.0)}))
    coord_server.set_responder(CoordScript([plan("crop")], [review("revise", "A3", final_answer="indeterminate")]))
    record = run_coord(make_pipeline(coord_server, reground=True), ct_volume, k, QUESTION)
    assert kinds(record) == ["plan", "round", "reground", "round", "reground", "round", "review", "decision"]
    regrounds = [e.reground for e in record.coordinator if e.reground is not None]
    assert [(r.action, r.crop_margin) for r in regrounds] == [("looser_crop", 0.5), ("looser_crop", 1.0)]
    sides = [e.crop_rect[2] - e.crop_rect[0] for e in record.evidence]
    assert sides[0] < sides[1] < sides[2]
    schema = coord_bodies(coord_server, "care_review")[0]["response_format"]["json_schema"]["schema"]
    assert "another_round" not in schema["properties"]["action"]["enum"]  # both extra rounds used
    assert record.final_answer == "indeterminate" and record.coordinator_decision.extra_rounds == 2


def test_malformed_plan_twice_runs_care_flow(make_pipeline, coord_server, default_experts, ct_volume, tumour):
    k, _ = tumour
    coord_server.set_responder(CoordScript(["I think crop is best.", "Use the crop, definitely."], []))
    record = run_coord(make_pipeline(coord_server), ct_volume, k, QUESTION)
    assert record.status == "completed" and record.errors == []
    assert kinds(record) == ["failure", "round", "decision"]
    f = record.coordinator[0]
    assert f.detail["kind"] == "malformed" and f.detail["step"] == "plan" and f.detail["replies"] == 2
    raw = record.calls[f.call_index].raw_output
    assert "I think crop is best." in raw and "Use the crop, definitely." in raw
    assert [a.evidence for a in record.answers] == [E.CROP, E.MASK, E.GLOBAL]  # every CARE-Flow pass
    d = record.coordinator_decision
    assert d.source == "vote" and record.final_answer == record.vote.winner_raw == "yes" and not d.changed_vote
    assert "after 2 tries" in d.failure and any("CARE-Flow majority vote" in w for w in record.warnings)
    assert len(coord_bodies(coord_server, "care_review")) == 0


def test_review_timeout_completes_care_flow(make_pipeline, coord_server, default_experts, ct_volume, tumour):
    """HTTP errors, refusals and malformed replies fail the same way (see the backend tests)."""
    k, _ = tumour
    coord_server.set_responder(CoordScript([plan("crop")], [Behaviour("slow", delay_s=5.0)] * 2))
    pipeline = make_pipeline(coord_server, timeout_s=0.4, max_retries=1, uncertainty_threshold=10.0)
    record = run_coord(pipeline, ct_volume, k, QUESTION)
    assert record.status == "completed"
    assert kinds(record) == ["plan", "round", "failure", "round", "decision"]
    assert record.coordinator[2].detail["kind"] == "timeout" and "after 2 attempts" in record.coordinator[2].error
    # The planned crop was kept, the missing CARE-Flow passes were added to round 0.
    completion = record.coordinator[3].round
    assert completion.round == 0 and completion.evidence == [E.MASK, E.GLOBAL] and "failed" in completion.reason
    assert [a.evidence for a in record.answers] == [E.CROP, E.MASK, E.GLOBAL]
    assert record.final_answer == "yes" and record.coordinator_decision.source == "vote"


def test_images_go_to_the_coordinator_only_when_enabled_and_consented(make_pipeline, coord_server, default_experts,
                                                                        ct_volume, tumour):
    from app.pipeline.remote.consent import ConsentStore

    k, _ = tumour
    coord_server.set_responder(CoordScript([plan("crop")] * 2, [review("accept", "A1")] * 2))
    pipeline = make_pipeline(coord_server, send_images=True, uncertainty_threshold=10.0)
    record = run_coord(pipeline, ct_volume, k, QUESTION)
    assert not record.coordinator[0].plan.images_sent
    assert "no consent" in record.coordinator[0].detail["images"]
    assert all(isinstance(b["messages"][1]["content"], str) for b in coord_bodies(coord_server, "care_plan"))

    ConsentStore().grant(coord_server.base_url, via="test")
    record = run_coord(pipeline, ct_volume, k, QUESTION)
    assert record.coordinator[0].plan.images_sent and record.coordinator[2].review.images_sent
    body = coord_bodies(coord_server, "care_plan")[-1]
    parts = body["messages"][1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"] and "Image-1 is the medical image" in parts[1]["text"]
    call = record.calls[record.coordinator[0].call_index]
    assert call.image_files == ["slice.png"] and "512x512" in call.prompt_text




def test_profile_without_coordinator_role_uses_its_vqa_model(make_pipeline, experts, default_experts, ct_volume,
                                                             tumour):
    """A thin-client profile with no coordinator role: the (remote) VQA model coordinates, and
    its JSON is read out of free text (fenced, after a think block) by the local parse path."""
    k, _ = tumour

    def replies(prompt, n_images, req):
        if "Task: choose which evidence" in prompt:
            return "<think>Small lesion.</think>```json\n" + json.dumps(plan("crop", "global")) + "\n```"
        if "Task: for every candidate" in prompt:
            return "Here you go: " + json.dumps(review("choose", "A1"))
        return default_experts(prompt, n_images, req)

    experts.set_responder(replies)
    pipeline = make_pipeline(None)
    record = run_coord(pipeline, ct_volume, k, QUESTION)
    assert kinds(record) == ["plan", "round", "review", "decision"], record.coordinator
    assert record.coordinator[0].plan.evidence == [E.CROP, E.GLOBAL]
    assert record.coordinator[0].plan.images_sent  # the VQA endpoint already has consent
    assert coord_strategy(pipeline).coordinator.backend.vlm is pipeline.backend("vqa")
    coord_requests = [r for r in experts.chat_requests if "JSON schema" in json.dumps(r.body)]
    assert len(coord_requests) == 2 and all("response_format" not in r.body for r in coord_requests)
    assert record.models["coordinator"].backend == "remote" and record.final_answer == "yes"
