"""The GPU offload plan (pure rule + ModelRoles eviction) and weights provenance (REVISION, SAM3 sha)."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from app.pipeline.backends import roles as roles_mod
from app.pipeline.backends.offload import choose_plan
from app.pipeline.backends.provenance import downloaded_commit, folder_revision, manifest_sha256
from app.pipeline.backends.roles import ModelRoles
from app.pipeline.profiles import load_profile
from app.pipeline.record import RunRecord
from app.pipeline.types import ModelInfo, PipelineError
from app.pipeline.vocab import OffloadPlan, Role

GB = 1e9
PAPER = {"entity": 6.0, "segmenter": 4.0, "box_segmenter": 0.5, "vqa": 19.0}  # care-paper's vram_gb


@pytest.mark.parametrize("free_gb, want", [
    (80, OffloadPlan.KEEP_ALL),            # H100/A100-80G: 29.5 GB fit
    (24, OffloadPlan.UNLOAD_BEFORE_VQA),   # the advertised 24 GB card: 19 GB at a time
    (20, OffloadPlan.UNLOAD_BEFORE_VQA),
])
def test_plan_for_care_paper_sizes(free_gb, want, monkeypatch):
    monkeypatch.delenv("CARE_OFFLOAD", raising=False)
    plan = choose_plan(free_gb * GB, PAPER)
    assert plan.plan == want and not plan.warning
    assert f"{free_gb:.1f} GB free" in plan.reason


def test_plan_cpu_offload_when_only_the_vqa_model_fits(monkeypatch):
    monkeypatch.delenv("CARE_OFFLOAD", raising=False)
    plan = choose_plan(9 * GB, {"entity": 8.0, "segmenter": 4.0, "vqa": 6.0})
    assert plan.plan == OffloadPlan.CPU_OFFLOAD


def test_plan_too_small_warns_and_no_gpu_keeps_all(monkeypatch):
    monkeypatch.delenv("CARE_OFFLOAD", raising=False)
    small = choose_plan(12 * GB, PAPER)
    assert small.plan == OffloadPlan.UNLOAD_BEFORE_VQA and "out-of-memory" in small.warning
    assert choose_plan(None, PAPER).plan == OffloadPlan.KEEP_ALL


def test_plan_override(monkeypatch):
    monkeypatch.setenv("CARE_OFFLOAD", "cpu-offload")
    assert choose_plan(80 * GB, PAPER).plan == OffloadPlan.CPU_OFFLOAD
    monkeypatch.setenv("CARE_OFFLOAD", "swap")
    with pytest.raises(PipelineError, match="unknown offload plan"):
        choose_plan(80 * GB, PAPER)


class _FakeVLM:
    def __init__(self, name):
        self.info = ModelInfo(role=name, backend="internvl", repo_id=name)
        self.unloads = 0

    def unload(self):
        self.unloads += 1


class _FakeSeg:
    def __init__(self, name):
        self.info = ModelInfo(role=name, backend="sam3", repo_id=name)


def _roles(monkeypatch, free_gb):
    """ModelRoles of care-paper with fake backends (no weights) on a GPU of ``free_gb``."""
    made = []

    def load(spec, device=None, dtype=None, profile=""):
        b = (_FakeSeg if spec.role in (Role.SEGMENTER, Role.BOX_SEGMENTER) else _FakeVLM)(str(spec.role))
        made.append((str(spec.role), device, dtype, b))
        return b

    monkeypatch.setattr(roles_mod, "load_backend", load)
    monkeypatch.setattr(roles_mod, "release_instance", lambda instance: None)
    monkeypatch.setattr(ModelRoles, "_free_vram", lambda self: free_gb * GB)
    monkeypatch.delenv("CARE_OFFLOAD", raising=False)
    return ModelRoles(load_profile("care-paper")), made


def test_roles_unload_stage_1_2_models_before_the_vqa_model(monkeypatch):
    roles, made = _roles(monkeypatch, 24)
    entity, seg = roles.backend(Role.ENTITY), roles.backend(Role.SEGMENTER)
    vqa = roles.backend(Role.VQA)
    assert entity.unloads == 1  # the 2B's weights dropped before the 8B loads
    assert Role.SEGMENTER not in roles._roles  # SAM3 dropped: rebuilt when asked for again
    assert vqa.unloads == 0
    seg2 = roles.backend(Role.SEGMENTER)
    assert seg2 is not seg and vqa.unloads == 1  # and the 8B before stage 2 runs again
    record = RunRecord("q")
    roles.note_model(record, Role.VQA, vqa)
    assert record.offload_plan == OffloadPlan.UNLOAD_BEFORE_VQA and "24.0 GB free" in record.offload_reason
    assert RunRecord.from_dict(json.loads(json.dumps(record.to_dict()))).offload_plan == OffloadPlan.UNLOAD_BEFORE_VQA


def test_roles_keep_all_when_everything_fits(monkeypatch):
    roles, made = _roles(monkeypatch, 80)
    entity = roles.backend(Role.ENTITY)
    roles.backend(Role.SEGMENTER)
    roles.backend(Role.VQA)
    assert entity.unloads == 0 and Role.SEGMENTER in roles._roles
    assert all(device is None for _, device, _, _ in made)


def test_roles_cpu_offload_places_stage_1_2_on_the_cpu(monkeypatch):
    roles, made = _roles(monkeypatch, 24)
    monkeypatch.setenv("CARE_OFFLOAD", "cpu-offload")
    roles._plan = None
    for role in (Role.ENTITY, Role.SEGMENTER, Role.VQA):
        roles.backend(role)
    placed = {role: (device, dtype) for role, device, dtype, _ in made}
    assert placed["entity"] == ("cpu", "float32") and placed["segmenter"] == ("cpu", "float32")
    assert placed["vqa"] == (None, None)


def test_old_run_json_loads_without_the_plan():
    data = RunRecord("q").to_dict()
    data.pop("offload_plan"), data.pop("offload_reason")
    assert RunRecord.from_dict(data).offload_plan is None


# --------------------------------------------------------------------------- provenance
def test_revision_file_then_manifest_then_pin(tmp_path: Path):
    assert folder_revision(tmp_path, "pin") == "pin"
    (tmp_path / ".care-manifest.json").write_text(json.dumps({"revision": "b" * 40, "files": []}))
    assert folder_revision(tmp_path, "pin") == "b" * 40
    (tmp_path / "REVISION").write_text("a" * 40 + "\n")
    assert folder_revision(tmp_path, "pin") == "a" * 40


def test_downloaded_commit_resolves_a_branch_pin_from_hub_metadata(tmp_path: Path):
    assert downloaded_commit(tmp_path, "c" * 40) == "c" * 40
    meta = tmp_path / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "config.json.metadata").write_text("d" * 40 + "\netag\n123\n")
    assert downloaded_commit(tmp_path, "main") == "d" * 40


def test_manifest_sha_only_while_the_size_matches(tmp_path: Path):
    w = tmp_path / "model.safetensors"
    w.write_bytes(b"x" * 10)
    (tmp_path / ".care-manifest.json").write_text(json.dumps(
        {"revision": "r", "files": [{"path": "model.safetensors", "size": 10, "sha256": "e" * 64}]}))
    assert manifest_sha256(tmp_path, "model.safetensors") == "e" * 64
    w.write_bytes(b"x" * 11)  # replaced since the install: the manifest no longer speaks for it
    assert manifest_sha256(tmp_path, "model.safetensors") == ""


def test_sam3_large_weights_use_the_manifest_sha(tmp_path: Path, monkeypatch):
    from app.pipeline.segmentation import sam3

    w = tmp_path / "model.safetensors"
    w.write_bytes(b"y" * 64)
    assert sam3.weights_hash(tmp_path) == hashlib.sha256(b"y" * 64).hexdigest()  # small: hashed
    monkeypatch.setattr(sam3, "_HASH_LIMIT", 10)
    (tmp_path / ".care-manifest.json").write_text(json.dumps(
        {"revision": "r", "files": [{"path": "model.safetensors", "size": 64, "sha256": "f" * 64}]}))
    assert sam3.weights_hash(tmp_path) == "f" * 64
    (tmp_path / ".care-manifest.json").unlink()  # hand-installed: hashed once, cached
    assert sam3.weights_hash(tmp_path) == hashlib.sha256(b"y" * 64).hexdigest()


def test_fetch_writes_and_records_the_revision(tmp_path: Path, monkeypatch):
    import huggingface_hub

    from app.pipeline import model_store as ms
    from app.pipeline.profiles import ModelSpec

    spec = ModelSpec(role=Role.VQA, backend="internvl", repo_id="acme/x", revision="main")

    def download(repo_id, **kw):
        local = Path(kw["local_dir"])
        local.mkdir(parents=True, exist_ok=True)
        (local / "config.json").write_text("{}")
        (local / "model.safetensors").write_bytes(b"z")
        meta = local / ".cache" / "huggingface" / "download"
        meta.mkdir(parents=True, exist_ok=True)
        (meta / "config.json.metadata").write_text("9" * 40 + "\n")
        return str(local)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    ms.fetch_model(spec, tmp_path)
    folder = spec.path(tmp_path)
    assert (folder / "REVISION").read_text().strip() == "9" * 40
    assert ms.read_care_manifest(folder).revision == "9" * 40
    assert "REVISION" not in {f.path for f in ms.read_care_manifest(folder).files}
    assert folder_revision(folder, "main") == "9" * 40
