"""Which VQA passes of a run share one model input, so each distinct input is asked once.

When no mask passes tau the crop and mask evidence fall back to the global image and their
requests become the global request, byte for byte: asking it three times would make one
look at the slice read as a unanimous "3 of 3" vote. The engine asks each distinct input
once and the vote counts it once (``Answer.same_input_as``, ``VoteResult.independent_passes``).
"""
from __future__ import annotations

import hashlib
from typing import Mapping, Sequence

import numpy as np

from .record import EvidenceItem
from .types import VLMRequest


def input_key(req: VLMRequest) -> str:
    """A digest of everything a request gives the model: system text, prompt, image pixels."""
    h = hashlib.sha256()
    for text in (req.system or "", req.prompt):
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    for img in req.images:
        a = np.ascontiguousarray(img)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def askers(items: Sequence[EvidenceItem], keys: Sequence[str], asked: Mapping[str, int]) -> dict[str, int]:
    """key -> the position in ``items`` that asks it, for the keys not in ``asked`` (already asked
    this run). The asker is a pass that did not fall back when there is one, so the model call
    is recorded under the evidence it really is (the global image)."""
    out: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in asked:
            continue
        if key not in out or (items[out[key]].fallback and not items[i].fallback):
            out[key] = i
    return out
