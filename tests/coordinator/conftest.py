"""Fixtures for the CARE-Coord tests: loopback chat servers (real sockets) for the experts and
the coordinator, profiles wiring them with the real LiteMedSAM, the real chest CT, and an
isolated consent/config directory."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from coord_support import (  # noqa: E402
    TRACHEA, VERTEBRA, ExpertScript, LoopbackChatServer, loopback_profile, norm1000,
)


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch) -> Path:
    cfg = tmp_path / "care-config"
    monkeypatch.setenv("CARE_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("CARE_DATA_DIR", str(tmp_path / "care-data"))  # the audit trail of `ask`
    monkeypatch.delenv("CARE_DEPT_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return cfg


@pytest.fixture(scope="session")
def tumour(ct_tumour) -> tuple[int, tuple[int, int, int, int]]:
    """(slice index, bbox) of the lung tumour where its label is largest (same grid as the DICOM)."""
    return ct_tumour.slice_index, ct_tumour.box


@pytest.fixture()
def experts():
    with LoopbackChatServer() as srv:
        yield srv


@pytest.fixture()
def coord_server():
    with LoopbackChatServer(model="gpt-5") as srv:
        yield srv


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
