"""OpenAI chat-completions wire format: building messages, parsing replies, and the
record of one call. No networking here."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from app.pipeline.remote.errors import RemoteError
from app.pipeline.remote.images import describe_data_url, png_data_url
from app.pipeline.token_text import align_tokens

Message = dict[str, Any]


@dataclass
class ChatResult:
    """One completed chat call (after retries)."""

    text: str
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    model: str = ""  # the model the server says answered
    finish_reason: str = ""  # "stop", "length" (hit max_tokens), ...
    raw: dict[str, Any] = field(default_factory=dict)  # the parsed response body
    seconds: float = 0.0  # wall time including retries and back-off
    attempts: int = 1
    waits: list[float] = field(default_factory=list)  # back-off sleeps between attempts (s)
    refusal: bool = False  # the model declined (OpenAI ``message.refusal``)
    # How the server's log-prob tokens were matched to its text (token_text.align_tokens):
    # special tokens it left out of the text, or why no token could be kept.
    token_note: str = ""

    @property
    def truncated(self) -> bool:
        """The reply hit max_tokens: recorded, and for VQA still usable if <answer> is present."""
        return self.finish_reason == "length"


# ---------------------------------------------------------------------- building messages


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(image: np.ndarray | str) -> dict[str, Any]:
    """An image content part from pixels, or from an already encoded (data) URL."""
    url = image if isinstance(image, str) else png_data_url(image)
    return {"type": "image_url", "image_url": {"url": url}}


def user_message(images: Sequence[np.ndarray | str], text: str, lead: str = "") -> Message:
    """Images first, then the text; ``lead`` right after the first image: the order the local
    InternVL template uses too."""
    if not images:
        return {"role": "user", "content": lead + text}
    if len(images) == 1:  # nothing between them: one text part
        return {"role": "user", "content": [image_part(images[0]), text_part(lead + text)]}
    parts = [image_part(images[0]), *([text_part(lead)] if lead else []), *(image_part(im) for im in images[1:])]
    return {"role": "user", "content": [*parts, text_part(text)]}


def system_message(text: str) -> Message:
    return {"role": "system", "content": text}


def has_images(messages: Sequence[Message]) -> bool:
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") in ("image_url", "input_image", "image") for p in content
        ):
            return True
    return False


def redact_images(messages: Sequence[Message]) -> list[Message]:
    """Deep copy with every image data URL replaced by its size and digest (for run records)."""
    out = copy.deepcopy(list(messages))
    for msg in out:
        content = msg.get("content")
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("image_url"), dict):
                    url = part["image_url"].get("url", "")
                    part["image_url"]["url"] = describe_data_url(str(url))
    return out


def json_schema_format(schema: dict[str, Any], name: str = "care_output", strict: bool = True) -> dict[str, Any]:
    """``response_format`` for structured output (OpenAI, vLLM guided decoding, llama.cpp)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


# ---------------------------------------------------------------------- parsing replies


@dataclass
class ParsedReply:
    text: str
    tokens: list[str]
    token_logprobs: list[float]
    model: str
    finish_reason: str
    refusal: bool
    raw: dict[str, Any]
    token_note: str = ""


def _content_text(content: Any) -> str:
    """``message.content`` is a string, null, or (some servers) a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        chunks = []
        for part in content:
            if isinstance(part, str):
                chunks.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                chunks.append(part["text"])
        return "".join(chunks)
    raise TypeError(f"content of type {type(content).__name__}")


def parse_chat_completion(body: bytes, endpoint: str) -> ParsedReply:
    def bad(why: str) -> RemoteError:
        return RemoteError("malformed_response", f"remote endpoint {endpoint}: malformed chat response ({why})")

    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        snippet = body[:60].decode("utf-8", "replace").replace("\n", " ")
        raise bad(f"not JSON: {exc.__class__.__name__} near {snippet!r}") from None
    if not isinstance(data, dict):
        raise bad("top level is not an object")
    if "error" in data and "choices" not in data:
        err = data["error"]
        msg = err.get("message") if isinstance(err, dict) else err
        raise bad(f"server reported error: {str(msg)[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad("no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise bad("choices[0].message missing")
    try:
        text = _content_text(message.get("content"))
    except TypeError as exc:
        raise bad(f"choices[0].message.{exc}") from None
    refusal = False
    if not text and isinstance(message.get("refusal"), str) and message["refusal"]:
        text, refusal = message["refusal"], True
    # Reasoning servers (vLLM --reasoning-parser) split the chain of thought out; CARE's
    # record and answer parser expect it inline, as a local model would emit it.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning and "<think>" not in text:
        text = f"<think>{reasoning}</think>{text}"

    tokens: list[str] = []
    logprobs: list[float] = []
    lp = choice.get("logprobs")
    if isinstance(lp, dict) and isinstance(lp.get("content"), list):
        for item in lp["content"]:
            if not isinstance(item, dict) or "token" not in item or "logprob" not in item:
                raise bad("logprobs.content entry without token/logprob")
            try:
                logprobs.append(float(item["logprob"]))
            except (TypeError, ValueError):
                raise bad("non-numeric logprob") from None
            tokens.append(str(item["token"]))
    # The text and the tokens are two answers of the server; the record keeps one reply whose
    # tokens join to its text, control tokens stripped from both (as the local backend does).
    aligned = align_tokens(text, tokens, logprobs)
    note = aligned.problem or (
        f"left out of the tokens, not in the text: {' '.join(aligned.left_out)}" if aligned.left_out else "")
    return ParsedReply(
        text=aligned.text,
        tokens=aligned.tokens,
        token_logprobs=aligned.logprobs,
        model=str(data.get("model") or ""),
        finish_reason=str(choice.get("finish_reason") or ""),
        refusal=refusal,
        raw=data,
        token_note=note,
    )


def parse_model_list(body: bytes) -> list[str]:
    """``GET /v1/models`` -> served model ids (OpenAI ``{"data": [{"id": ...}]}``)."""
    data = json.loads(body.decode("utf-8"))
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("no data list")
    return [str(it["id"]) for it in items if isinstance(it, dict) and "id" in it]


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
_THINK = re.compile(r"<think>.*?</think>", re.S)


def extract_json_text(text: str) -> str:
    """The JSON inside a reply: drop a <think> block and a Markdown code fence if present."""
    s = _THINK.sub("", text).strip()
    m = _FENCE.match(s)
    return m.group(1) if m else s
