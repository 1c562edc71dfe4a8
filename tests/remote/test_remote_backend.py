"""RemoteVLMBackend (the `remote` VLM backend) and the endpoint health check, end to end
over a loopback chat-completions server with real CT pixels."""
from __future__ import annotations

import base64
import json

import cv2
import numpy as np
import pytest

from app.pipeline.profiles import ModelSpec
from app.pipeline.remote.backend import RemoteVLMBackend
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.errors import RemoteError
from app.pipeline.remote.health import check_endpoint
from app.pipeline.types import PipelineError, VLMBackend, VLMRequest
from loopback_server import Behaviour, LoopbackChatServer

SYSTEM = "Answer with <think>...</think><answer>...</answer>."


def _spec(srv: LoopbackChatServer, **opts) -> ModelSpec:
    options = {"endpoint": srv.base_url, "served_model": srv.model, "timeout_s": 10.0, "backoff_s": 0.01, **opts}
    return ModelSpec(role="vqa", backend="remote", repo_id=srv.model, options=options)


def _flow_requests(image: np.ndarray, mask: np.ndarray) -> list[VLMRequest]:
    """The three CARE-Flow evidence passes as the engine would build them."""
    crop = np.ascontiguousarray(image[100:228, 150:278])
    return [
        VLMRequest([image, crop], "Zoom-in crop evidence. Is there a lung nodule?", SYSTEM),
        VLMRequest([image, mask], "Binary mask evidence. Is there a lung nodule?", SYSTEM),
        VLMRequest([image], "Global evidence. Is there a lung nodule?", SYSTEM),
    ]


def _pixels(url: str) -> np.ndarray:
    raw = base64.b64decode(url.split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


def test_backend_info_and_protocol(server):
    backend = RemoteVLMBackend(_spec(server))
    assert isinstance(backend, VLMBackend)
    info = backend.info
    assert (info.backend, info.repo_id, info.path, info.device, info.role) == (
        "remote", server.model, server.base_url, "remote", "vqa"
    )


def test_missing_endpoint_is_a_clear_pipeline_error():
    with pytest.raises(PipelineError, match="endpoint"):
        RemoteVLMBackend(ModelSpec(role="entity", backend="remote", options={"served_model": "m"}))


def test_images_need_consent_text_only_does_not(server, ct_slice_and_mask):
    image, mask = ct_slice_and_mask
    backend = RemoteVLMBackend(_spec(server))
    assert backend.needs_consent()
    with pytest.raises(RemoteError) as ei:
        backend.generate(_flow_requests(image, mask))
    assert ei.value.kind == "consent_required"
    assert server.requests == []  # not even the /models check went out
    (gen,) = backend.generate([VLMRequest([], "Global question, text only")])
    assert gen.text.endswith("<answer>global</answer>")


def test_care_flow_requests_are_concurrent_and_exact(server, ct_slice_and_mask):
    image, mask = ct_slice_and_mask
    ConsentStore().grant(server.base_url, who="tester")
    backend = RemoteVLMBackend(_spec(server, max_concurrency=3))
    # Each chat request waits at the server until three are in flight at once: a sequential
    # client would stall here and the assertion on max_in_flight would fail.
    server.hold_until_in_flight(3, timeout_s=5.0)
    requests = _flow_requests(image, mask)
    gens = backend.generate(requests, max_new_tokens=256)

    assert server.max_in_flight == 3
    assert [g.text for g in gens] == [
        "<think>Received 2 image(s) with crop evidence.</think><answer>crop</answer>",
        "<think>Received 2 image(s) with mask evidence.</think><answer>mask</answer>",
        "<think>Received 1 image(s) with global evidence.</think><answer>global</answer>",
    ]
    for g in gens:
        assert "".join(g.tokens) == g.text and len(g.token_logprobs) == len(g.tokens)
        assert "base64," not in g.prompt_text and "sha256" in g.prompt_text
        assert json.loads(g.prompt_text)[0] == {"role": "system", "content": SYSTEM}

    chats = server.chat_requests
    assert len(chats) == 3
    by_prompt = {c.body["messages"][1]["content"][-1]["text"]: c.body for c in chats}
    for req in requests:
        body = by_prompt[req.prompt]
        assert body["logprobs"] is True and body["max_tokens"] == 256
        parts = body["messages"][1]["content"]
        # The local template's order (shared prefix first, for a server's prefix cache): the slice,
        # the question (``lead``, empty here), the evidence image(s), the evidence text last.
        assert [p["type"] for p in parts] == ["image_url"] * len(req.images) + ["text"]
        for part, sent in zip(parts, req.images):
            np.testing.assert_array_equal(_pixels(part["image_url"]["url"]), sent)
        # Nothing but the model name, roles, part types, the system prompt, the question
        # and the image data leaves the machine (no DICOM fields, no paths).
        texts = {s for s in _strings(body) if not s.startswith("data:image/png;base64,")}
        assert texts == {server.model, "system", "user", SYSTEM, "image_url", "text", req.prompt}
    assert [r.finish_reason for r in backend.last_results] == ["stop"] * 3


def test_served_model_checked_once_via_models_route(ct_slice_and_mask):
    with LoopbackChatServer(served_models=["OpenGVLab/InternVL3-8B-hf"]) as srv:
        backend = RemoteVLMBackend(_spec(srv))
        with pytest.raises(RemoteError) as ei:
            backend.generate([VLMRequest([], "global")])
        assert ei.value.kind == "model_mismatch" and "InternVL3-8B" in str(ei.value)
        assert srv.chat_requests == []


def test_without_models_route_the_reply_model_is_checked():
    with LoopbackChatServer(models_route=False) as srv:
        backend = RemoteVLMBackend(_spec(srv))
        assert backend.generate([VLMRequest([], "global")])[0].text.endswith("<answer>global</answer>")
        srv.script("wrong_model")
        with pytest.raises(RemoteError) as ei:
            backend.generate([VLMRequest([], "global")])
        assert ei.value.kind == "model_mismatch"
        assert [r.method for r in srv.requests].count("GET") == 1  # /models asked once only


def test_one_failing_pass_fails_the_call_with_its_error(server):
    backend = RemoteVLMBackend(_spec(server))
    server.script("ok", Behaviour("status", status=400), "ok")
    with pytest.raises(RemoteError) as ei:
        backend.generate([VLMRequest([], f"q{i} global") for i in range(3)])
    assert ei.value.kind == "http_error" and ei.value.status == 400


def test_refusal_text_passes_through_as_generation(server):
    server.script("refusal_text")
    (gen,) = RemoteVLMBackend(_spec(server)).generate([VLMRequest([], "crop")])
    assert "can't assist" in gen.text and "<answer>" not in gen.text


def test_health_check(server, closed_port, monkeypatch):
    ok = check_endpoint(server.base_url)
    assert ok.reachable and ok.served_models == [server.model] and ok.latency_ms > 0 and ok.error == ""
    assert ok.serves(server.model) and not ok.serves("other")

    down = check_endpoint(f"http://127.0.0.1:{closed_port}/v1", timeout_s=2)
    assert not down.reachable and down.error_kind == "connection_refused" and str(closed_port) in down.error

    with LoopbackChatServer(api_key="sk-h") as srv:
        assert check_endpoint(srv.base_url, "sk-h").reachable
        denied = check_endpoint(srv.base_url, "wrong")
        assert not denied.reachable and denied.error_kind == "http_error" and "401" in denied.error

    insecure = check_endpoint("http://192.0.2.10:8000/v1")
    assert not insecure.reachable and insecure.error_kind == "refused_insecure"


def test_profile_toml_section_builds_the_backend(tmp_path, server):
    """The `department` profile layout (role tables with backend = "remote") loads through
    app.pipeline.profiles and drives the loopback server."""
    from app.pipeline.profiles import load_profile

    manifest = tmp_path / "profiles.toml"
    manifest.write_text(
        f"""
[profiles.department]
description = "thin client"
vram_gb = 0
[profiles.department.vqa]
backend = "remote"
repo_id = "OpenGVLab/InternVL3-8B-hf"
endpoint = "{server.base_url}"
served_model = "{server.model}"
api_key_env = "CARE_DEPT_API_KEY"
timeout_s = 30
max_retries = 1
max_concurrency = 3
allow_insecure_http = false
"""
    )
    spec = load_profile("department", manifest).get("vqa")
    backend = RemoteVLMBackend(spec)
    assert backend.info.repo_id == server.model and backend.client.max_retries == 1
    (gen,) = backend.generate([VLMRequest([], "Global evidence?")])
    assert gen.text.endswith("<answer>global</answer>")
