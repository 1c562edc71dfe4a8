"""The remote coordinator backend against a real loopback chat-completions server: wire
format, images only with the profile switch AND consent, retries, timeouts, malformed
replies, refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.pipeline.coordinator.base import CoordinatorFailure
from app.pipeline.coordinator.remote_backend import RemoteCoordinatorBackend
from app.pipeline.coordinator.schemas import plan_schema
from app.pipeline.remote.consent import ConsentStore
from loopback_server import Behaviour

from coord_support import plan, remote_spec

IMAGE = np.full((64, 64, 3), 90, np.uint8)
PLAN_JSON = json.dumps(plan("crop", "mask"))


def backend(srv, **opts) -> RemoteCoordinatorBackend:
    return RemoteCoordinatorBackend(remote_spec(srv, "coordinator", **opts))


def ask(b: RemoteCoordinatorBackend):
    return b.ask("system text", "plan please", [IMAGE], plan_schema(), "care_plan", None, 256)


def test_text_only_request_format(coord_server):
    coord_server.script(Behaviour("content", content=PLAN_JSON))
    reply = ask(backend(coord_server))
    assert reply.value["evidence"] == ["crop", "mask"] and reply.tries == 1 and reply.images_sent == 0
    (req,) = coord_server.chat_requests
    body = req.body
    assert body["model"] == "gpt-5" and body["max_tokens"] == 256 and body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "plan please"  # a plain string: no image parts at all
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "care_plan"
    assert fmt["json_schema"]["schema"] == plan_schema() and fmt["json_schema"]["strict"] is True


def test_images_need_the_profile_switch_and_consent(coord_server):
    coord_server.set_default(Behaviour("content", content=PLAN_JSON))
    # Consent alone is not enough: the profile keeps the coordinator text only by default.
    ConsentStore().grant(coord_server.base_url, via="test")
    assert backend(coord_server).images_allowed() == (False, "the profile sends the coordinator text only (send_images = false)")
    assert ask(backend(coord_server)).images_sent == 0
    # Enabled and consented: the slice goes along, as a PNG image part before the text.
    reply = ask(backend(coord_server, send_images=True))
    assert reply.images_sent == 1
    content = coord_server.chat_requests[-1].body["messages"][1]["content"]
    assert [p["type"] for p in content] == ["image_url", "text"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "sha256" in reply.prompt_text and "base64," not in reply.prompt_text  # the record keeps no pixels
    # Enabled but consent revoked: text only again, and the reason says so.
    ConsentStore().revoke(coord_server.base_url)
    b = backend(coord_server, send_images=True)
    assert b.images_allowed() == (False, f"no consent to send images to {coord_server.base_url}")
    assert ask(b).images_sent == 0 and isinstance(coord_server.chat_requests[-1].body["messages"][1]["content"], str)


def test_openai_reasoning_model_parameters(coord_server):
    coord_server.script(Behaviour("content", content=PLAN_JSON))
    ask(backend(coord_server, token_param="max_completion_tokens", send_temperature=False,
                extra_body={"reasoning_effort": "low"}))
    body = coord_server.chat_requests[0].body
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body and "temperature" not in body
    assert body["reasoning_effort"] == "low"


def test_malformed_once_is_corrected_by_the_one_retry(coord_server):
    coord_server.script(Behaviour("json_invalid"), Behaviour("content", content="```json\n" + PLAN_JSON + "\n```"))
    reply = ask(backend(coord_server))
    assert reply.tries == 2 and reply.attempts[0].error == "no JSON object in the reply"
    second = coord_server.chat_requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"].startswith("Sure! Here is the JSON") and "Your reply was invalid" in second[3]["content"]


def test_malformed_twice_fails_with_both_replies_kept(coord_server):
    coord_server.script(Behaviour("json_violation"), Behaviour("json_invalid"))
    with pytest.raises(CoordinatorFailure) as ei:
        ask(backend(coord_server))
    f = ei.value
    assert f.kind == "malformed" and "after 2 tries" in f.message and len(f.attempts) == 2
    assert '"evidence": 42' in f.attempts[0].text and "does not match the schema" in f.attempts[0].error
    assert len(coord_server.chat_requests) == 2  # no third call


def test_429_and_500_are_retried(coord_server):
    coord_server.script(Behaviour("status", status=429, retry_after="0"), Behaviour("status", status=500),
                        Behaviour("content", content=PLAN_JSON))
    reply = ask(backend(coord_server, max_retries=2))
    assert reply.value["evidence"] == ["crop", "mask"] and len(coord_server.chat_requests) == 3


def test_server_errors_beyond_the_retries_fail(coord_server):
    coord_server.set_default(Behaviour("status", status=500))
    with pytest.raises(CoordinatorFailure) as ei:
        ask(backend(coord_server, max_retries=1))
    assert ei.value.kind == "server_error" and "after 2 attempts" in ei.value.message
    assert len(coord_server.chat_requests) == 2


def test_timeout_is_bounded(coord_server):
    coord_server.set_default(Behaviour("slow", delay_s=5.0))
    with pytest.raises(CoordinatorFailure) as ei:
        ask(backend(coord_server, timeout_s=0.3, max_retries=0))
    assert ei.value.kind == "timeout" and "0.3 s" in ei.value.message


def test_slow_reply_within_the_timeout_is_fine(coord_server):
    coord_server.script(Behaviour("slow", delay_s=0.3))
    coord_server.set_default(Behaviour("content", content=PLAN_JSON))
    # "slow" answers with the schema-derived default value, which is a valid plan.
    reply = ask(backend(coord_server, timeout_s=5.0))
    assert reply.value["evidence"] == ["crop"]


def test_refusal_is_not_retried(coord_server):
    coord_server.script(Behaviour("refusal"))
    with pytest.raises(CoordinatorFailure) as ei:
        ask(backend(coord_server))
    assert ei.value.kind == "refusal" and len(coord_server.chat_requests) == 1
    assert ei.value.attempts[0].text == "I can't help with that request."


def test_connection_refused(closed_port):
    from app.pipeline.profiles import ModelSpec

    spec = ModelSpec(role="coordinator", backend="remote", repo_id="gpt-5",
                     options={"endpoint": f"http://127.0.0.1:{closed_port}/v1", "max_retries": 0})
    with pytest.raises(CoordinatorFailure) as ei:
        ask(RemoteCoordinatorBackend(spec))
    assert ei.value.kind == "connection_refused"
