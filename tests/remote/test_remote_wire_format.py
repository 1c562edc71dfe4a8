"""Pure wire-format pieces: endpoint parsing, reply parsing, PNG encoding, schema validation."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.pipeline.remote.chat_schema import extract_json_text, parse_chat_completion, redact_images, user_message
from app.pipeline.remote.endpoint import is_loopback_host, parse_endpoint
from app.pipeline.remote.errors import RemoteError
from app.pipeline.remote.images import encode_png
from app.pipeline.remote.json_validate import SchemaError, validation_error


def _body(message: dict, **choice) -> bytes:
    return json.dumps({"model": "m", "choices": [{"index": 0, "message": message, **choice}]}).encode()


def test_endpoint_canonical_form():
    assert parse_endpoint("https://AI.Dept.example:443/v1/").url == "https://ai.dept.example/v1"
    assert parse_endpoint("http://127.0.0.1:8000").url == "http://127.0.0.1:8000/v1"
    assert parse_endpoint("http://[::1]:8000/v1/chat/completions").url == "http://[::1]:8000/v1"
    assert parse_endpoint("https://host/openai/v1").path("models") == "/openai/v1/models"
    for bad in ("ftp://x/v1", "not a url", "https://user:pw@host/v1", ""):
        with pytest.raises(RemoteError):
            parse_endpoint(bad)


def test_loopback_hosts_without_dns():
    assert all(map(is_loopback_host, ["localhost", "127.0.0.1", "127.255.0.9", "::1", "[::1]", "LOCALHOST."]))
    assert not any(map(is_loopback_host, ["10.0.0.1", "192.168.1.2", "localhost.evil.com", "127.0.0.1.nip.io", "::"]))


def test_parse_content_parts_reasoning_and_logprobs():
    pieces = ["<think>", "left", " lobe", "</think>", "<answer>", "B", "</answer>", "<|im_end|>"]
    body = _body(
        {"content": [{"type": "text", "text": "<answer>"}, {"type": "text", "text": "B</answer>"}], "reasoning_content": "left lobe"},
        finish_reason="stop",
        logprobs={"content": [{"token": t, "logprob": -0.1 * i} for i, t in enumerate(pieces)]},
    )
    reply = parse_chat_completion(body, "http://h/v1")
    assert reply.text == "<think>left lobe</think><answer>B</answer>"
    # The stop token is in vLLM's log-probs but not in the text: left out of both.
    assert reply.tokens == pieces[:-1] and reply.token_logprobs == [-0.1 * i for i in range(7)]
    assert "".join(reply.tokens) == reply.text and reply.token_note == ""


def test_tokens_that_do_not_make_up_the_text_are_not_kept():
    """A log-prob list covering part of the reply (here: not the reasoning) cannot be placed on
    the text: no token is kept, rather than figures over characters they do not stand for."""
    body = _body({"content": "<answer>B</answer>", "reasoning_content": "left lobe"},
                 logprobs={"content": [{"token": "<answer>", "logprob": -0.1}, {"token": "B", "logprob": -0.7}]})
    reply = parse_chat_completion(body, "http://h/v1")
    assert reply.text == "<think>left lobe</think><answer>B</answer>"
    assert reply.tokens == [] and reply.token_logprobs == []
    assert "do not make up its text" in reply.token_note


@pytest.mark.parametrize(
    "body, why",
    [
        (b"", "not JSON"),
        (b"[1]", "not an object"),
        (b'{"choices": []}', "no choices"),
        (b'{"error": {"message": "model overloaded"}}', "model overloaded"),
        (_body({"content": 5}), "content of type int"),
        (_body({"content": "x"}, logprobs={"content": [{"token": "x"}]}), "without token/logprob"),
    ],
)
def test_malformed_replies_name_the_reason(body, why):
    with pytest.raises(RemoteError) as ei:
        parse_chat_completion(body, "https://h/v1")
    assert ei.value.kind == "malformed_response" and why in str(ei.value) and "https://h/v1" in str(ei.value)


def test_extract_json_text_strips_think_and_fence():
    assert json.loads(extract_json_text('<think>hmm</think>\n```json\n{"a": 1}\n```')) == {"a": 1}


@pytest.mark.parametrize("shape", [(17, 23, 3), (9, 5), (4, 6, 4), (3, 3, 1)])
def test_png_round_trip_is_lossless(shape):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_UNCHANGED)
    if img.ndim == 3 and img.shape[2] == 3:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA)
    np.testing.assert_array_equal(decoded.reshape(img.shape), img)
    with pytest.raises(ValueError):
        encode_png(img.astype(np.float32))


def test_redaction_keeps_size_and_digest_not_bytes():
    msg = user_message([np.zeros((12, 34, 3), np.uint8)], "crop evidence")
    red = redact_images([msg])
    url = red[0]["content"][0]["image_url"]["url"]
    assert "34x12" in url and "sha256" in url and "base64," not in url
    assert msg["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")  # original untouched


SCHEMA = {
    "type": "object",
    "properties": {
        "plan": {"type": "array", "items": {"enum": ["crop", "mask", "global"]}, "minItems": 1},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "note": {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]},
    },
    "required": ["plan"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    "value, error",
    [
        ({"plan": ["crop"], "confidence": 0.5, "note": None}, None),
        ({"plan": []}, "fewer than 1"),
        ({"plan": ["zoom"]}, "not one of"),
        ({"plan": ["crop"], "confidence": 2}, "maximum"),
        ({"plan": ["crop"], "confidence": True}, "expected number"),
        ({"plan": ["crop"], "note": "too long"}, "anyOf"),
        ({"plan": ["crop"], "extra": 1}, "unexpected property"),
        ({}, "missing required"),
    ],
)
def test_schema_validation(value, error):
    got = validation_error(value, SCHEMA)
    assert (got is None) if error is None else (error in got)


def test_unsupported_schema_keyword_is_an_error_not_ignored():
    # The built-in subset validator (used when jsonschema is not installed) must refuse
    # keywords it cannot check rather than pass everything.
    from app.pipeline.remote.json_validate import _check

    with pytest.raises(SchemaError):
        _check("x", {"type": "string", "pattern": "^x$"}, "$")
