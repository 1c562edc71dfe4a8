"""A remote reply's text and its log-prob tokens made to agree (app.pipeline.token_text), and
the loopback server answering as vLLM does: the stop token and (by default) every special token
are in its log-probs but not in its text.

The loopback tests fail on a client that passes the server's two lists through: its tokens then
hold <|im_end|> and the skipped <ref>/<box>, so they do not join to the text and every answer
span after them is shifted."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.pipeline.parsing import answer_logprobs, mean_logprob
from app.pipeline.profiles import ModelSpec
from app.pipeline.prompts import evidence_request, entity_request
from app.pipeline.remote.backend import RemoteVLMBackend
from app.pipeline.remote.consent import ConsentStore
from app.pipeline.remote.http_client import ChatClient
from app.pipeline.token_text import CONTROL_TOKENS, align_tokens, strip_control
from app.pipeline.types import EvidenceType as E
from app.pipeline.types import VLMRequest
from loopback_server import Behaviour, LoopbackChatServer

GROUNDED = "<think>The nodule is here.</think><answer><ref>lung nodule</ref><box>[[1, 2, 3, 4]]</box></answer>"
SKIPPED = "<think>The nodule is here.</think><answer>lung nodule[[1, 2, 3, 4]]</answer>"


def _spec(srv: LoopbackChatServer, **opts) -> ModelSpec:
    options = {"endpoint": srv.base_url, "served_model": srv.model, "timeout_s": 10.0, **opts}
    return ModelSpec(role="vqa", backend="remote", repo_id=srv.model, options=options)


def _raw_entries(backend: RemoteVLMBackend) -> list[dict]:
    return backend.last_results[-1].raw["choices"][0]["logprobs"]["content"]


# ------------------------------------------------------------------------- align_tokens


def test_control_tokens_leave_text_and_tokens_alike():
    aligned = align_tokens("<answer>yes</answer><|endoftext|>", ["<answer>", "yes", "</answer>", "<|endoftext|>",
                                                                 "<|im_end|>"], [-0.1, -0.2, -0.3, -0.4, -0.5])
    assert aligned.text == "<answer>yes</answer>" and aligned.tokens == ["<answer>", "yes", "</answer>"]
    assert aligned.logprobs == [-0.1, -0.2, -0.3] and aligned.left_out == [] and aligned.problem == ""
    assert strip_control("a<|im_start|>b<IMG_CONTEXT>c") == "abc" and "<ref>" not in CONTROL_TOKENS


def test_special_tokens_missing_from_the_text_are_left_out_of_the_tokens():
    """A server that skipped special tokens in its text (vLLM's default): they leave the tokens too."""
    tokens = ["<answer>", "<ref>", "lung", "</ref>", "</answer>", "<|im_end|>"]
    aligned = align_tokens("<answer>lung</answer>", tokens, [-1.0, -2.0, -0.5, -3.0, -0.25, -0.1])
    assert aligned.tokens == ["<answer>", "lung", "</answer>"] and aligned.logprobs == [-1.0, -0.5, -0.25]
    assert aligned.left_out == ["<ref>", "</ref>"]
    # Kept where the text has them (skip_special_tokens=false heard).
    kept = align_tokens("<answer><ref>lung</ref></answer>", tokens, [-1.0, -2.0, -0.5, -3.0, -0.25, -0.1])
    assert kept.tokens == tokens[:-1] and kept.left_out == []


def test_a_character_split_over_tokens_goes_to_the_token_that_completes_it():
    # "Ödem": Ö is two UTF-8 bytes, each its own token; vLLM reports each as "" (bytes []),
    # other servers as U+FFFD.
    for part in ("", "\ufffd"):
        aligned = align_tokens("Ödem ±2", [part, part, "dem", " ", part, part, "2"], [-0.1] * 7)
        assert aligned.tokens == ["", "Ö", "dem", " ", "", "±", "2"] and len(aligned.logprobs) == 7
        # A byte never completed: the server's text shows U+FFFD (real vLLM, random weights).
        assert align_tokens("\ufffdom a\ufffdb", [part, "om", " a", part, "b"], [0.0] * 5).tokens == [
            "\ufffd", "om", " a", "\ufffd", "b"]


@pytest.mark.parametrize("text, tokens", [
    ("<answer>no</answer>", ["<answer>", "yes", "</answer>"]),  # another text than the tokens
    ("<answer>yes</answer> more", ["<answer>", "yes", "</answer>"]),  # tokens cover part of it
    ("ab", ["a", "b", "c"]),
])
def test_tokens_that_cannot_make_up_the_text_are_dropped_with_the_reason(text, tokens):
    aligned = align_tokens(text, tokens, [-0.1] * len(tokens))
    assert aligned.text == text and aligned.tokens == [] and aligned.logprobs == []
    assert "do not make up its text" in aligned.problem


# ------------------------------------------------------------------------- loopback (vLLM's behaviour)


def test_loopback_reports_the_stop_and_skipped_special_tokens_as_vllm_does(server):
    """What the client receives, unreconciled: the behaviour the fix is for."""
    server.set_default(Behaviour("content", content=GROUNDED))
    client = ChatClient(server.base_url, server.model)
    result = client.chat([{"role": "user", "content": "q"}], max_tokens=64, logprobs=True)
    raw = result.raw["choices"][0]
    pieces = [e["token"] for e in raw["logprobs"]["content"]]
    assert raw["message"]["content"] == SKIPPED  # skip_special_tokens not sent: vLLM's default true
    assert pieces[-1] == "<|im_end|>" and {"<ref>", "</ref>", "<box>", "</box>"} <= set(pieces)
    assert "".join(pieces) != raw["message"]["content"]
    assert "skip_special_tokens" not in server.chat_requests[0].body


def test_backend_keeps_grounding_tokens_in_text_and_tokens(server):
    server.set_default(Behaviour("content", content=GROUNDED))
    backend = RemoteVLMBackend(_spec(server))
    (gen,) = backend.generate([VLMRequest([], "Where is the nodule?")], max_new_tokens=64)
    assert server.chat_requests[-1].body["skip_special_tokens"] is False
    assert gen.text == GROUNDED  # <ref>/<box> reach the answer, as from the local backend
    assert "".join(gen.tokens) == gen.text and len(gen.tokens) == len(gen.token_logprobs)
    assert "<|im_end|>" not in gen.tokens
    raw = _raw_entries(backend)
    assert len(gen.tokens) == len(raw) - 1  # everything but the stop token
    assert backend.last_results[-1].token_note == ""


def test_server_ignoring_the_field_gives_tokens_of_its_text_only():
    """A server that skips special tokens whatever the request says: the text lacks <ref>/<box>,
    so do the tokens, and the answer's log-probs are those of the answer's own tokens."""
    with LoopbackChatServer(honours_skip_special_tokens=False) as srv:
        srv.set_default(Behaviour("content", content=GROUNDED))
        backend = RemoteVLMBackend(_spec(srv))
        (gen,) = backend.generate([VLMRequest([], "Where is the nodule?")], max_new_tokens=64)
        raw = _raw_entries(backend)
    assert gen.text == SKIPPED and "".join(gen.tokens) == gen.text
    assert not {"<ref>", "</ref>", "<box>", "</box>", "<|im_end|>"} & set(gen.tokens)
    assert len(gen.tokens) == len(raw) - 5
    assert backend.last_results[-1].token_note == "left out of the tokens, not in the text: <ref> </ref> <box> </box>"
    assert gen.tokens_note == backend.last_results[-1].token_note  # reaches the run record's call
    # The answer span's log-probs: exactly the entries of the tokens between <answer> and </answer>.
    inside = [e["logprob"] for e in raw[raw.index(next(e for e in raw if e["token"] == "<answer>")) + 1:]
              if e["token"] not in ("<ref>", "</ref>", "<box>", "</box>", "</answer>", "<|im_end|>")]
    assert answer_logprobs(gen) == inside
    assert mean_logprob(answer_logprobs(gen)) == pytest.approx(sum(inside) / len(inside))


def test_profile_may_not_send_the_field(server):
    server.set_default(Behaviour("content", content=GROUNDED))
    backend = RemoteVLMBackend(_spec(server, keep_special_tokens=False))
    (gen,) = backend.generate([VLMRequest([], "q")], max_new_tokens=64)
    assert "skip_special_tokens" not in server.chat_requests[-1].body
    assert gen.text == SKIPPED and "".join(gen.tokens) == gen.text


def test_non_ascii_reply_and_truncation_keep_tokens_joined(server):
    server.set_default(Behaviour("content", content="<think>Ödem, Ø 12 mm</think><answer>ja</answer>"))
    backend = RemoteVLMBackend(_spec(server))
    (gen,) = backend.generate([VLMRequest([], "q")], max_new_tokens=64)
    assert gen.text == "<think>Ödem, Ø 12 mm</think><answer>ja</answer>"
    assert "".join(gen.tokens) == gen.text and "" in gen.tokens  # Ö's first byte: "" (vLLM's piece)
    assert len(gen.token_logprobs) == len(_raw_entries(backend)) - 1
    (cut,) = backend.generate([VLMRequest([], "q")], max_new_tokens=3)  # hit max_tokens: no stop token
    assert backend.last_results[-1].truncated and "".join(cut.tokens) == cut.text and len(cut.tokens) == 3


# ------------------------------------------------------------------------- which evidence a request carries


def test_evidence_is_read_from_the_request_not_from_words_of_the_question(server):
    """The question names every evidence word and the ones-mask sentence says "mask": each
    request is still answered for the evidence it was built with."""
    question = "Does the mass mask the hilum on a global or cropped view?"
    image = np.full((32, 32, 3), 90, np.uint8)
    crop, mask, ones = image[:16, :16].copy(), np.zeros_like(image), np.full_like(image, 255)
    requests = [
        evidence_request(question, E.CROP, [image, crop], ["lung mask"]),
        evidence_request(question, E.MASK, [image, mask], ["global lesion"]),
        evidence_request(question, E.GLOBAL, [image, ones], ones_mask=True),
        evidence_request(question, E.GLOBAL, [image], ["crop"]),
        entity_request(question, image),
    ]
    ConsentStore().grant(server.base_url, who="tester")
    gens = RemoteVLMBackend(_spec(server, max_concurrency=1)).generate(requests, max_new_tokens=64)
    answers = [g.text.rsplit("<answer>", 1)[-1].removesuffix("</answer>") for g in gens]
    assert answers == ["crop", "mask", "global", "global", "none"]
    assert json.loads(gens[2].prompt_text)[-1]["content"][-1]["text"].startswith("Image-2 is an all-white mask")
