"""Scripted replies for :class:`app.devtools.loopback_server.LoopbackChatServer`: an expert
(entity + VQA) server answering by the evidence named in the prompt, and a coordinator answering
plans and reviews in order. Used by the CARE-Coord tests and the coordinator benchmark."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from app.devtools.loopback_server import Behaviour, last_text_part
from app.pipeline.prompts import evidence_named


@dataclass
class ExpertScript:
    """What the expert (entity + VQA) server answers, by the evidence each request was built for
    (``prompts.evidence_named``: exact, whatever words the question holds)."""

    entity_reply: str = ""
    answers: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # evidence -> (think, answer, logprob)
    # Evidence requests of later rounds (crop_2 = the second crop request, ...) may differ.
    later: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def __call__(self, prompt: str, n_images: int, req: dict[str, Any]):
        if "Do not answer the question" in prompt:
            return self.entity_reply
        named = evidence_named(last_text_part(req))
        kind = named.value if named is not None else "global"
        self.seen[kind] = self.seen.get(kind, 0) + 1
        key = f"{kind}_{self.seen[kind]}"
        think, answer, lp = self.later.get(key) or self.answers.get(kind) or ("I look.", kind, -0.05)
        return Behaviour("content", content=f"<think>{think}</think><answer>{answer}</answer>", logprob=lp)


@dataclass
class CoordScript:
    """Coordinator replies by schema name (care_plan / care_review), in order; each item is a
    dict (sent as JSON), a str (sent as is) or a Behaviour (faults)."""

    plans: list[Any] = field(default_factory=list)
    reviews: list[Any] = field(default_factory=list)

    def __call__(self, prompt: str, n_images: int, req: dict[str, Any]):
        name = ((req.get("response_format") or {}).get("json_schema") or {}).get("name", "")
        queue = self.plans if name == "care_plan" else self.reviews if name == "care_review" else None
        if not queue:
            return None  # the server's schema-derived default reply
        item = queue.pop(0)
        return json.dumps(item) if isinstance(item, dict) else item


def review(action="accept", candidate="A1", rests_on=None, final_answer="", next_evidence=(), next_entities=(),
           judgements=None, rationale="checked") -> dict[str, Any]:
    return {
        "judgements": judgements if judgements is not None else [
            {"candidate": candidate, "cot_supports_answer": True, "addresses_question": True, "note": "consistent"}],
        "action": action, "candidate": candidate, "final_answer": final_answer,
        "rests_on": list(rests_on) if rests_on is not None else [candidate], "rationale": rationale,
        "next_evidence": list(next_evidence), "next_entities": list(next_entities),
    }


def plan(*evidence: str, rationale: str = "local morphology matters") -> dict[str, Any]:
    return {"evidence": list(evidence), "rationale": rationale}
