"""The profile's models by role, loaded lazily and shared between roles naming one checkpoint.

Interim home of the engine's former "Models" section (same logic, same method names); the
registry refactor replaces it with ``app.pipeline.backends.roles.ModelRoles``.
"""
from __future__ import annotations

from typing import Any, Sequence

from .profiles import ModelSpec, Profile
from .record import EntityMerge
from .types import ModelInfo, WeightsMissingError


class ModelRoles:
    def __init__(self, profile: Profile, *, device: str | None = None, dtype: str | None = None) -> None:
        self.profile = profile
        self.device, self.dtype = device, dtype
        # Loaded backends, shared between roles that name the same checkpoint.
        self._loaded: dict[tuple[str, str, str], Any] = {}
        self._roles: dict[str, Any] = {}
        self._dedup: Any = None

    def check_weights(self) -> None:
        """Raise WeightsMissingError before any work when a role's weights are absent."""
        missing = []
        for spec in self.profile.models.values():
            if spec.role == "coordinator" or not _needs_local_folder(spec):
                continue
            if spec.backend == "internvl":
                try:  # the backend's own check (config + weight files); creating it loads nothing
                    self._vlm(spec).check_weights()
                except WeightsMissingError:
                    missing.append(f"{spec.role} ({spec.path()})")
            elif spec.backend == "sam3":
                from .segmentation.sam3 import weights_present

                if not weights_present(spec.path()):
                    missing.append(f"{spec.role} ({spec.path()})")
            elif not _has_weights(spec):
                missing.append(f"{spec.role} ({spec.path()})")
        if missing:
            raise WeightsMissingError(
                f"weights for profile '{self.profile.name}' are not installed: missing {'; '.join(missing)}. "
                f"Run `care-viewer models fetch {self.profile.name}` or `care-viewer models import DIR`."
            )

    def backend(self, role: str) -> Any:
        """The loaded backend for ``role`` (loads it on first use); None if the profile has none."""
        if role in self._roles:
            return self._roles[role]
        spec = self.profile.get(role)
        if spec is None:
            self._roles[role] = None
            return None
        key = (spec.backend, _backend_location(spec), spec.revision)
        if key not in self._loaded:
            if spec.backend == "internvl":
                self._loaded[key] = self._vlm(spec)
            elif spec.backend == "remote":
                self._loaded[key] = _remote_vlm(spec)
            else:
                self._loaded[key] = _build_segmenter(spec)
        self._roles[role] = self._loaded[key]
        return self._roles[role]

    def _vlm(self, spec: ModelSpec) -> Any:
        from .backends.internvl import get_vlm

        return get_vlm(spec, device=self.device, dtype=self.dtype, profile=self.profile.name)

    def dedup(self) -> Any:
        if self._dedup is None:
            self._dedup = _EntityDedup()
        return self._dedup

    def warm_up(self, roles: Sequence[str] = ("entity", "segmenter", "box_segmenter", "vqa")) -> None:
        for role in roles:
            self.backend(role)


def _needs_local_folder(spec: ModelSpec) -> bool:
    return not spec.bundled and spec.backend != "remote"


def _backend_location(spec: ModelSpec) -> str:
    """What identifies a backend instance: its folder, or for a remote model endpoint + name
    (two roles served by different endpoints must not share one client)."""
    if spec.backend == "remote":
        opts = spec.options
        return f"{opts.get('endpoint') or opts.get('base_url') or ''}#{opts.get('served_model') or spec.repo_id}"
    return str(spec.path()) if _needs_local_folder(spec) else spec.repo_id


def _remote_vlm(spec: ModelSpec) -> Any:
    from .remote.backend import RemoteVLMBackend

    return RemoteVLMBackend(spec)


def _has_weights(spec: ModelSpec) -> bool:
    path = spec.path()
    return path.is_dir() and any(path.iterdir())


def _build_segmenter(spec: ModelSpec) -> Any:
    from .segmentation import build_segmenter

    return build_segmenter(spec)


class _EntityDedup:
    """MiniLM de-duplication: names -> (kept names, merges grouped by the kept name)."""

    def __init__(self) -> None:
        self.info: ModelInfo | None = None
        # Pairs of the last call kept apart although similar, because they name opposite sides.
        self.last_blocked: list[Any] = []

    def __call__(self, names: Any) -> tuple[list[str], list[EntityMerge]]:
        from .entity_dedup import dedup_entities

        result = dedup_entities(list(names))
        self.last_blocked = list(result.blocked)
        if result.encoder is not None:
            self.info = result.encoder
        grouped: dict[str, EntityMerge] = {}
        for m in result.merges:
            g = grouped.setdefault(m.kept, EntityMerge(m.kept))
            g.merged.append(m.merged)
            g.similarity.append(float(m.cosine))
        return list(result.kept), list(grouped.values())
