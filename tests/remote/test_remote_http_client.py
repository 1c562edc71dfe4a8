"""ChatClient against a real HTTP server on 127.0.0.1: wire format, retries, failure kinds."""
from __future__ import annotations

import base64
import json
import socket
import time

import cv2
import numpy as np
import pytest

from app.pipeline.remote.chat_schema import image_part, text_part
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.errors import RemoteError
from app.pipeline.remote.http_client import ChatClient, model_matches, parse_retry_after
from app.pipeline.remote.secrets import ApiKeyRef
from loopback_server import Behaviour, LoopbackChatServer


def _client(srv: LoopbackChatServer, **kw) -> ChatClient:
    kw.setdefault("timeout_s", 5.0)
    kw.setdefault("max_retries", 2)
    kw.setdefault("backoff_s", 0.01)
    return ChatClient(srv.base_url, srv.model, **kw)


def _decode_png_data_url(url: str) -> np.ndarray:
    head, _, payload = url.partition(",")
    assert head == "data:image/png;base64"
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def test_request_format_images_text_logprobs_and_bearer_key(monkeypatch, ct_slice_and_mask):
    image, mask = ct_slice_and_mask
    monkeypatch.setenv("CARE_DEPT_API_KEY", "sk-test-123")
    with LoopbackChatServer(api_key="sk-test-123") as srv:
        client = _client(srv, api_key_ref=ApiKeyRef(env="CARE_DEPT_API_KEY"))
        ConsentStore().grant(srv.base_url, who="tester")
        messages = [
            {"role": "system", "content": "You are a radiology assistant."},
            {"role": "user", "content": [image_part(image), image_part(mask), text_part("Mask evidence: is there a nodule?")]},
        ]
        result = client.chat(messages, max_tokens=64, logprobs=True, top_logprobs=2)

        (req,) = srv.chat_requests
        assert req.headers["Authorization"] == "Bearer sk-test-123"
        assert req.headers["Content-Type"] == "application/json"
        body = req.body
        assert body["model"] == srv.model
        assert body["max_tokens"] == 64 and body["temperature"] == 0.0 and body["stream"] is False
        assert body["logprobs"] is True and body["top_logprobs"] == 2
        assert "response_format" not in body
        parts = body["messages"][1]["content"]
        assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
        np.testing.assert_array_equal(_decode_png_data_url(parts[0]["image_url"]["url"]), image)
        np.testing.assert_array_equal(_decode_png_data_url(parts[1]["image_url"]["url"]), mask)

    assert result.text == "<think>Received 2 image(s) with mask evidence.</think><answer>mask</answer>"
    assert "".join(result.tokens) == result.text
    assert len(result.token_logprobs) == len(result.tokens) and all(lp <= 0 for lp in result.token_logprobs)
    assert result.finish_reason == "stop" and not result.truncated
    assert result.model == srv.model and result.attempts == 1


def test_missing_key_gives_401_http_error_without_retry():
    with LoopbackChatServer(api_key="sk-needed") as srv:
        client = _client(srv, api_key_ref=ApiKeyRef(env="CARE_DEPT_API_KEY", use_keyring=False))
        with pytest.raises(RemoteError) as ei:
            client.chat([{"role": "user", "content": "hi"}], max_tokens=8)
        assert "Authorization" not in srv.chat_requests[0].headers
        assert len(srv.chat_requests) == 1
    assert ei.value.kind == "http_error" and ei.value.status == 401
    assert srv.base_url in str(ei.value) and "API key" in str(ei.value)


def test_slow_server_times_out_within_deadline(server):
    server.set_default(Behaviour("slow", delay_s=30.0))
    client = _client(server, timeout_s=0.3, max_retries=1)
    start = time.monotonic()
    with pytest.raises(RemoteError) as ei:
        client.chat([{"role": "user", "content": "hi"}], max_tokens=8)
    # Bound, not a benchmark: waiting for the server would take 30 s per attempt.
    assert time.monotonic() - start < 10.0
    assert ei.value.kind == "timeout"
    assert server.base_url in str(ei.value) and "after 2 attempts" in str(ei.value)
    assert len(server.chat_requests) == 2


def test_overall_deadline_caps_retries(server):
    server.set_default(Behaviour("slow", delay_s=30.0))
    client = _client(server, timeout_s=0.4, max_retries=50, deadline_s=1.0)
    with pytest.raises(RemoteError) as ei:
        client.chat([{"role": "user", "content": "hi"}], max_tokens=8)
    assert ei.value.kind == "timeout"
    assert "overall deadline" in str(ei.value)
    assert len(server.chat_requests) < 51


def test_429_retry_after_is_honoured_then_success(server):
    server.script(Behaviour("status", status=429, retry_after="0.2"))
    result = _client(server, backoff_s=5.0).chat([{"role": "user", "content": "global"}], max_tokens=32)
    assert result.attempts == 2
    assert result.waits == [0.2]  # the server's Retry-After, not the 5 s back-off
    assert result.text.endswith("<answer>global</answer>")
    assert len(server.chat_requests) == 2


def test_retry_after_is_capped(server):
    server.script(Behaviour("status", status=429, retry_after="3600"))
    result = _client(server, retry_after_cap_s=0.05).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert result.attempts == 2 and result.waits == [0.05]


def test_500_then_success_uses_jittered_exponential_backoff(server):
    server.script(Behaviour("status", status=500), Behaviour("status", status=502))
    result = _client(server, backoff_s=0.02).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert result.attempts == 3
    first, second = result.waits
    assert 0.01 <= first <= 0.02 and 0.02 <= second <= 0.04  # base * 2**n, half of it jittered


def test_always_500_bounded_attempts_then_server_error(server):
    server.set_default(Behaviour("status", status=500))
    with pytest.raises(RemoteError) as ei:
        _client(server, max_retries=3).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "server_error" and ei.value.status == 500
    assert len(server.chat_requests) == 4
    assert "HTTP 500" in str(ei.value) and server.base_url in str(ei.value) and "after 4 attempts" in str(ei.value)


def test_4xx_is_not_retried_but_408_is(server):
    server.script(Behaviour("status", status=400))
    with pytest.raises(RemoteError) as ei:
        _client(server).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "http_error" and len(server.chat_requests) == 1
    assert "scripted HTTP 400" in str(ei.value)  # the server's own reason is shown
    server.reset()
    server.script(Behaviour("status", status=408))
    assert _client(server).chat([{"role": "user", "content": "x"}], max_tokens=8).attempts == 2


def test_malformed_json_body(server):
    server.script("malformed")
    with pytest.raises(RemoteError) as ei:
        _client(server).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "malformed_response" and "not JSON" in str(ei.value)
    assert len(server.chat_requests) == 1


def test_truncated_body_is_retried_then_reported(server):
    server.script("truncated")
    assert _client(server).chat([{"role": "user", "content": "x"}], max_tokens=8).attempts == 2
    server.set_default("truncated")
    with pytest.raises(RemoteError) as ei:
        _client(server, max_retries=1).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "truncated" and "truncated" in str(ei.value)


def test_connection_closed_without_reply(server):
    server.set_default("close")
    with pytest.raises(RemoteError) as ei:
        _client(server, max_retries=1).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "connection_refused" and "closed" in str(ei.value)
    assert len(server.chat_requests) == 2


def test_connection_refused_on_closed_port(closed_port):
    client = ChatClient(f"http://127.0.0.1:{closed_port}/v1", "m", timeout_s=2, max_retries=2, backoff_s=0.01)
    with pytest.raises(RemoteError) as ei:
        client.chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "connection_refused"
    assert f"127.0.0.1:{closed_port}" in str(ei.value) and "after 3 attempts" in str(ei.value)


def test_model_mismatch_in_reply(server):
    server.script("wrong_model")
    with pytest.raises(RemoteError) as ei:
        _client(server).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert ei.value.kind == "model_mismatch" and "some-other-model" in str(ei.value)
    assert model_matches("gpt-4o", "gpt-4o-2024-08-06") and not model_matches("internvl3-8b", "internvl3-8b-awq")


def test_finish_reason_length_is_recorded_not_fatal(server):
    result = _client(server).chat([{"role": "user", "content": "crop"}], max_tokens=3, logprobs=True)
    assert result.truncated and result.finish_reason == "length"
    assert result.text == "<think>Received " and len(result.tokens) == 3


def test_refusal_is_flagged(server):
    server.script("refusal")
    result = _client(server).chat([{"role": "user", "content": "x"}], max_tokens=8)
    assert result.refusal and "can't help" in result.text


@pytest.mark.parametrize(
    "url", ["http://10.20.30.40:8000/v1", "http://ai.dept.example/v1", "http://127.0.0.1.example.com/v1"]
)
def test_insecure_http_refused_before_any_socket(monkeypatch, url):
    opened = []
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(AssertionError("socket opened")))
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: opened.append(addr) or (_ for _ in ()).throw(AssertionError("socket opened")))
    with pytest.raises(RemoteError) as ei:
        ChatClient(url, "m")
    assert ei.value.kind == "refused_insecure" and "allow_insecure_http" in str(ei.value)
    # Opting in for this endpoint, or https, is accepted (construction only: nothing is sent).
    ChatClient(url, "m", allow_insecure_http=True)
    ChatClient(url.replace("http://", "https://"), "m")
    for loopback in ("http://localhost:8000", "http://127.9.9.9:1/v1", "http://[::1]:8000/v1"):
        ChatClient(loopback, "m")
    assert opened == []


def test_images_need_consent_before_any_request(server):
    image = np.full((8, 8, 3), 7, np.uint8)
    client = _client(server)
    with pytest.raises(RemoteError) as ei:
        client.chat([{"role": "user", "content": [image_part(image), text_part("crop")]}], max_tokens=8)
    assert ei.value.kind == "consent_required" and server.base_url in str(ei.value)
    assert server.requests == []
    # Text only needs no consent.
    assert client.chat([{"role": "user", "content": "global"}], max_tokens=32).text.endswith("<answer>global</answer>")


SCHEMA = {
    "type": "object",
    "properties": {
        "entities": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
        "evidence": {"type": "string", "enum": ["crop", "mask", "global"]},
    },
    "required": ["entities", "evidence"],
    "additionalProperties": False,
}


def test_chat_json_sends_schema_and_validates(server):
    reply = _client(server).chat_json([{"role": "user", "content": "Which entities? mask"}], SCHEMA, max_tokens=64)
    assert reply.value == {"entities": ["mask"], "evidence": "crop"} and reply.tries == 1
    fmt = server.chat_requests[0].body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == SCHEMA


def test_chat_json_retries_once_on_malformed_json(server):
    server.script("json_invalid")
    reply = _client(server).chat_json([{"role": "user", "content": "q"}], SCHEMA, max_tokens=64)
    assert reply.tries == 2
    retry_msgs = server.chat_requests[1].body["messages"]
    assert retry_msgs[-2]["role"] == "assistant" and "not JSON" in retry_msgs[-1]["content"]

    server.reset()
    server.set_default("json_invalid")
    with pytest.raises(RemoteError) as ei:
        _client(server).chat_json([{"role": "user", "content": "q"}], SCHEMA, max_tokens=64)
    assert ei.value.kind == "malformed_response" and "after 2 tries" in str(ei.value)
    assert len(server.chat_requests) == 2


def test_chat_json_rejects_schema_violation(server):
    server.set_default("json_violation")
    with pytest.raises(RemoteError) as ei:
        _client(server).chat_json([{"role": "user", "content": "q"}], SCHEMA, max_tokens=64)
    assert ei.value.kind == "malformed_response" and "$.entities" in str(ei.value)
    assert "expected array" in server.chat_requests[1].body["messages"][-1]["content"]


def test_parse_retry_after_forms():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_list_models(server):
    assert _client(server).list_models() == [server.model]
    assert json.loads(server.requests[0].raw_body or b"null") is None and server.requests[0].path == "/v1/models"
