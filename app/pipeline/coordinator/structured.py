"""Structured replies from free text: find the JSON object in what a model wrote, validate
it against a schema and a semantic check, and say in one line what is wrong otherwise.

Local models (and servers that ignore ``response_format``) wrap JSON in prose, Markdown
fences or a ``<think>`` block; this accepts all of those but never guesses a value: a reply
either contains one object that validates, or it is an error the caller can show the model.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from app.pipeline.remote.json_validate import validation_error

Check = Callable[[Any], "str | None"]

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
# strict=False: a raw control character inside a string (guided decoding on a byte-level
# vocabulary can emit one, e.g. U+0010) is kept as that character, not a reason to reject the reply.
_DECODER = json.JSONDecoder(strict=False)


@dataclass
class Parsed:
    value: Any = None
    error: str = ""  # empty when ``value`` is valid

    @property
    def ok(self) -> bool:
        return not self.error


def _objects(text: str) -> list[Any]:
    """Every top-level JSON object that decodes, scanning from each ``{``."""
    found, pos = [], 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return found
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        pos = end


def extract_json(text: str) -> tuple[Any, str]:
    """(value, "") for the JSON object in ``text``, or (None, reason)."""
    body = _THINK.sub("", text or "").strip()
    if not body:
        return None, "empty reply"
    fenced = _FENCE.findall(body)
    for chunk in [*fenced, body]:
        try:
            value = _DECODER.decode(chunk.strip())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value, ""
    objects = _objects(body)
    if len(objects) == 1:
        return objects[0], ""
    if len(objects) > 1:
        return None, f"{len(objects)} JSON objects in the reply; expected exactly one"
    return None, "no JSON object in the reply"


def parse_reply(text: str, schema: dict[str, Any], check: Check | None = None) -> Parsed:
    value, why = extract_json(text)
    if why:
        return Parsed(None, why)
    error = validation_error(value, schema)
    if error:
        return Parsed(value, f"does not match the schema ({error})")
    if check is not None:
        problem = check(value)
        if problem:
            return Parsed(value, problem)
    return Parsed(value, "")


def corrective_prompt(error: str) -> str:
    """The follow-up turn after an invalid reply (the one retry both backends allow)."""
    return (f"Your reply was invalid: {error}. Reply again with only one JSON object that matches "
            "the schema, with no other text.")
