"""Bounded coordinator schemas: every free-text string carries maxLength and every array
maxItems (so a guided-decoding server always closes the JSON), the validator enforces the
bounds, and an OpenAI strict-mode profile (length_bounds = false) sends and validates the
schema without string-length keywords."""
from __future__ import annotations

import json

import pytest

from app.pipeline.coordinator.base import CoordinatorFailure
from app.pipeline.coordinator.remote_backend import RemoteCoordinatorBackend
from app.pipeline.coordinator.schemas import (
    MAX_NOTE, MAX_RATIONALE, plan_schema, review_schema, unbounded_strings, without_length_bounds,
)
from app.pipeline.coordinator.structured import parse_reply
from app.pipeline.profiles import load_profile
from loopback_server import Behaviour

from coord_support import plan, remote_spec


def _keys(obj, key) -> int:
    if isinstance(obj, dict):
        return (key in obj) + sum(_keys(v, key) for v in obj.values())
    if isinstance(obj, list):
        return sum(_keys(v, key) for v in obj)
    return 0


def test_every_free_text_field_and_array_is_bounded():
    assert unbounded_strings(plan_schema()) == []
    for ids, more in ((["A1", "A2", "A3"], True), (["A1"], False)):
        schema = review_schema(ids, more)
        assert unbounded_strings(schema) == []
        assert schema["properties"]["judgements"]["maxItems"] == len(ids)
        assert schema["properties"]["rests_on"]["maxItems"] == len(ids)
    # The check itself finds what a guided decoder could run on with.
    assert unbounded_strings({"type": "object", "properties": {"r": {"type": "string"},
                                                               "l": {"type": "array", "items": {"type": "string"}}}}) \
        == ["$.r", "$.l", "$.l[]"]


def test_the_bounds_are_enforced_on_replies():
    long_plan = {**plan("crop"), "rationale": "x" * (MAX_RATIONALE + 1)}
    parsed = parse_reply(json.dumps(long_plan), plan_schema())
    assert not parsed.ok and "rationale" in parsed.error
    assert parse_reply(json.dumps({**long_plan, "rationale": "x" * MAX_RATIONALE}), plan_schema()).ok
    review = review_schema(["A1", "A2"], False)
    value = {"judgements": [{"candidate": "A1", "cot_supports_answer": True, "addresses_question": True,
                             "note": "n" * (MAX_NOTE + 1)}],
             "action": "accept", "candidate": "A1", "final_answer": "yes", "rests_on": ["A1"], "rationale": "r",
             "next_evidence": [], "next_entities": []}
    assert not parse_reply(json.dumps(value), review).ok
    value["judgements"] *= 3  # more judgements than candidates
    value["judgements"][0]["note"] = "ok"
    assert "judgements" in parse_reply(json.dumps(value), review).error


def test_strict_openai_profile_sends_and_validates_without_length_bounds(coord_server):
    long_plan = json.dumps({**plan("crop"), "rationale": "y" * (MAX_RATIONALE + 50)})
    coord_server.set_default(Behaviour("content", content=long_plan))
    bounded = RemoteCoordinatorBackend(remote_spec(coord_server, "coordinator"))
    strict = RemoteCoordinatorBackend(remote_spec(coord_server, "coordinator", length_bounds=False))
    reply = strict.ask("s", "plan", [], plan_schema(), "care_plan", None, 256)
    assert reply.value["rationale"] == "y" * (MAX_RATIONALE + 50)
    sent = coord_server.chat_requests[-1].body["response_format"]["json_schema"]["schema"]
    assert sent == without_length_bounds(plan_schema()) and _keys(sent, "maxLength") == 0
    assert _keys(sent, "maxItems") == 1  # array bounds stay (OpenAI strict accepts them)
    coord_server.reset()
    with pytest.raises(CoordinatorFailure, match="rationale"):  # after the one corrective retry
        bounded.ask("s", "plan", [], plan_schema(), "care_plan", None, 256)
    sent = coord_server.chat_requests[0].body["response_format"]["json_schema"]["schema"]
    assert sent["properties"]["rationale"]["maxLength"] == MAX_RATIONALE
    # The paper's GPT-5 coordinator profile is the strict one; the department's vLLM keeps the bounds.
    assert load_profile("care-paper").models["coordinator"].options["length_bounds"] is False
    assert "length_bounds" not in load_profile("department").models["coordinator"].options


def test_a_raw_control_character_in_a_string_is_kept_not_rejected():
    # What vLLM's guided decoding emitted for the tiny model: U+0010 unescaped inside the rationale.
    reply = '{"evidence":["mask"],"rationale":"pleen>bronchus\x10>colon"}'
    parsed = parse_reply(reply, plan_schema())
    assert parsed.ok, parsed.error
    assert parsed.value["rationale"] == "pleen>bronchus\x10>colon"
