"""Which backend instance a spec names, and the one process-wide cache of those instances.

A backend instance holds weights (GBs for a VLM), so two roles, two pipelines or a profile
switch that name the same checkpoint must share it: one instance per
:class:`InstanceKey` = (kind, location, revision, placement). This module is a leaf (profiles
and vocab only) so the backend modules that construct instances (``backends.internvl``,
``segmentation.factory``, ``backends.minilm``) and the registry above them all use it without
import cycles.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, TypeVar

from app.pipeline.profiles import ModelSpec
from app.pipeline.vocab import BackendKind

T = TypeVar("T")


@dataclass(frozen=True)
class InstanceKey:
    kind: BackendKind
    location: str  # see backend_location
    revision: str = ""
    placement: tuple[str, ...] = ()  # (device, dtype) for backends placed by the caller


def backend_location(spec: ModelSpec, base_dir: Path | None = None) -> str:
    """What identifies a backend instance: its resolved checkpoint folder; the package asset
    for a bundled model; endpoint + served model for a remote one (two roles served by
    different endpoints must not share one client)."""
    if spec.backend == BackendKind.REMOTE:
        opts = spec.options
        return f"{opts.get('endpoint') or opts.get('base_url') or ''}#{opts.get('served_model') or spec.repo_id}"
    if spec.bundled or spec.backend == BackendKind.MINILM:
        return spec.repo_id
    return str(spec.path(base_dir).resolve())


def instance_key(spec: ModelSpec, base_dir: Path | None = None, placement: tuple[str, ...] = ()) -> InstanceKey:
    return InstanceKey(spec.backend, backend_location(spec, base_dir), spec.revision, placement)


_INSTANCES: dict[InstanceKey, Any] = {}
_CREATING: dict[InstanceKey, threading.Lock] = {}
_LOCK = threading.Lock()


def shared_instance(key: InstanceKey, create: Callable[[], T]) -> T:
    """The cached instance for ``key``, else ``create()`` (once, even with racing threads).

    Creation may take seconds (segmenters load their weights when built), so it runs under a
    per-key lock: a slow SAM3 load never blocks another backend's lookup.
    """
    with _LOCK:
        if key in _INSTANCES:
            return _INSTANCES[key]
        creating = _CREATING.setdefault(key, threading.Lock())
    with creating:
        with _LOCK:
            if key in _INSTANCES:
                return _INSTANCES[key]
        try:
            made = create()
            with _LOCK:
                _INSTANCES[key] = made
            return made
        finally:
            with _LOCK:
                _CREATING.pop(key, None)


def cached_instances(kinds: Collection[BackendKind] | None = None) -> dict[InstanceKey, Any]:
    """A snapshot of the cache (all kinds, or only ``kinds``)."""
    with _LOCK:
        return {k: v for k, v in _INSTANCES.items() if kinds is None or k.kind in kinds}


def release_instances(kinds: Collection[BackendKind] | None = None) -> None:
    """Drop the cached instances (all, or of ``kinds``) and unload those that can free memory."""
    with _LOCK:
        dropped = [key for key in _INSTANCES if kinds is None or key.kind in kinds]
        instances = [_INSTANCES.pop(key) for key in dropped]
    for instance in instances:
        unload = getattr(instance, "unload", None)
        if callable(unload):
            unload()


def release_instance(instance: Any) -> None:
    """Drop one instance from the cache (by identity) and unload it if it can free memory."""
    with _LOCK:
        for key in [k for k, v in _INSTANCES.items() if v is instance]:
            _INSTANCES.pop(key)
    unload = getattr(instance, "unload", None)
    if callable(unload):
        unload()
