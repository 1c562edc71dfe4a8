"""JSON extraction and validation of coordinator replies, on the kinds of text real models
write (fenced, wrapped in prose, after a <think> block), and the review's semantic checks."""
from __future__ import annotations

import json

import pytest

from app.pipeline.coordinator.schemas import (
    plan_from_json,
    plan_schema,
    review_from_json,
    review_problem,
    review_schema,
)
from app.pipeline.coordinator.structured import extract_json, parse_reply
from app.pipeline.types import EvidenceType

from coord_support import review

PLAN = {"evidence": ["crop", "mask"], "rationale": "The nodule is small; texture and location matter."}


@pytest.mark.parametrize("text", [
    json.dumps(PLAN),
    "```json\n" + json.dumps(PLAN, indent=2) + "\n```",
    "Here is my plan:\n```\n" + json.dumps(PLAN) + "\n```\nLet me know.",
    "<think>The question asks about a small lesion, so zoom in.</think>\n" + json.dumps(PLAN),
    "Sure. " + json.dumps(PLAN) + " That is all.",
    "<think>unfinished reasoning that never closes " + json.dumps({"evidence": ["global"]}),  # think eats it
])
def test_plan_is_found_in_realistic_replies(text):
    parsed = parse_reply(text, plan_schema())
    if "never closes" in text:
        assert not parsed.ok and parsed.error == "empty reply"
        return
    assert parsed.ok, parsed.error
    plan = plan_from_json(parsed.value)
    assert plan.evidence == [EvidenceType.CROP, EvidenceType.MASK] and plan.rationale.startswith("The nodule")


@pytest.mark.parametrize("text, fragment", [
    ("", "empty reply"),
    ("I would use the crop evidence.", "no JSON object"),
    ('{"evidence": ["crop"], "rationale": "a"} {"evidence": ["mask"], "rationale": "b"}', "2 JSON objects"),
    ('{"evidence": ["zoom"], "rationale": "x"}', "does not match the schema"),
    ('{"evidence": [], "rationale": "x"}', "fewer than 1"),
    ('{"evidence": ["crop"]}', "rationale"),
    ('{"evidence": ["crop"], "rationale": "x", "extra": 1}', "extra"),
    ("Sure! Here is the JSON: {entities: [oops", "no JSON object"),
])
def test_invalid_replies_say_what_is_wrong(text, fragment):
    parsed = parse_reply(text, plan_schema())
    assert not parsed.ok and fragment in parsed.error


def test_duplicate_evidence_is_folded_in_order():
    plan = plan_from_json({"evidence": ["mask", "crop", "mask"], "rationale": " r "})
    assert plan.evidence == [EvidenceType.MASK, EvidenceType.CROP] and plan.rationale == "r"


def test_review_candidates_are_an_enum_and_another_round_only_while_rounds_are_left():
    schema = review_schema(["A1", "A2", "A3"], allow_another_round=True)
    props = schema["properties"]
    assert props["candidate"]["enum"] == ["A1", "A2", "A3"]
    assert props["rests_on"]["items"]["enum"] == ["A1", "A2", "A3"] and props["rests_on"]["minItems"] == 1
    assert "another_round" in props["action"]["enum"]
    assert "another_round" not in review_schema(["A1"], allow_another_round=False)["properties"]["action"]["enum"]
    # OpenAI strict mode: every object lists all its properties as required and allows no others.
    for obj in (schema, props["judgements"]["items"]):
        assert set(obj["required"]) == set(obj["properties"]) and obj["additionalProperties"] is False
    assert "minLength" not in json.dumps(schema)


def test_a_revised_answer_must_rest_on_existing_candidates():
    schema = review_schema(["A1", "A2"], allow_another_round=False)
    bad = review("revise", "A1", rests_on=["A1", "A7"], final_answer="no")
    parsed = parse_reply(json.dumps(bad), schema)
    assert not parsed.ok and "A7" in parsed.error
    good = review("revise", "A2", rests_on=["A2"], final_answer="No mass")
    assert parse_reply(json.dumps(good), schema).ok


def test_review_semantics():
    answers = {"A1": "yes", "A2": "no", "A3": ""}
    vote_ids = ["A1"]
    ok = review("accept", "A1")
    assert review_problem(ok, answers, vote_ids) is None
    assert "use 'choose'" in review_problem(review("accept", "A2"), answers, vote_ids)
    assert "no usable answer" in review_problem(review("choose", "A3"), answers, vote_ids)
    assert review_problem(review("choose", "A2"), answers, vote_ids) is None
    assert "needs a final_answer" in review_problem(review("revise", "A2", final_answer=" "), answers, vote_ids)
    assert "needs next_evidence" in review_problem(review("another_round", "A1"), answers, vote_ids)
    assert review_problem(review("another_round", "A1", next_entities=["trachea"]), answers, vote_ids) is None
    assert "no majority-vote answer" in review_problem(review("accept", "A1"), answers, [])


def test_chosen_candidate_is_always_in_rests_on():
    r = review_from_json(review("choose", "A2", rests_on=["A3"], next_entities=["  left   lung ", ""]))
    assert r.rests_on == ["A2", "A3"] and r.next_entities == ["left lung"]


def test_extract_prefers_a_fenced_object_over_prose_braces():
    text = "The answer {maybe} is below.\n```json\n{\"evidence\": [\"global\"], \"rationale\": \"modality\"}\n```"
    value, why = extract_json(text)
    assert why == "" and value["evidence"] == ["global"]
