"""The models of one profile, by CARE role: what the engine asks for ``backend("vqa")``.

Roles resolve through the backend registry (``app.pipeline.backends.registry``): weights-holding
backends come from its process-wide cache, and roles of this profile naming one checkpoint (or
one remote endpoint + model) share one instance.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from app.pipeline.backends.instances import InstanceKey
from app.pipeline.backends.registry import load_backend, missing_weights, needs_local_folder, role_key
from app.pipeline.types import WeightsMissingError
from app.pipeline.vocab import Role

if TYPE_CHECKING:
    from app.pipeline.profiles import Profile
    from app.pipeline.record import EntityMerge, RunRecord
    from app.pipeline.types import ModelInfo

WARM_UP_ROLES = (Role.ENTITY, Role.SEGMENTER, Role.BOX_SEGMENTER, Role.VQA)


class ModelRoles:
    """Backends of ``profile`` by role, loaded lazily on first use."""

    def __init__(self, profile: "Profile", *, device: str | None = None, dtype: str | None = None) -> None:
        self.profile = profile
        self.device, self.dtype = device, dtype
        self._shared: dict[InstanceKey, Any] = {}  # roles naming one checkpoint share it
        self._roles: dict[str, Any] = {}
        self._dedup: EntityDedup | None = None

    def check_weights(self) -> None:
        """Raise WeightsMissingError before any work when a role's weights are absent.

        The coordinator is checked when it is built (it may fall back to the VQA model);
        bundled and remote models have no folder to check.
        """
        if self.profile.unpublished:  # a slot for weights nobody can fetch yet: say so, not "run fetch"
            raise WeightsMissingError(f"profile '{self.profile.name}' cannot run: {self.profile.unpublished}")
        missing = [
            f"{spec.role} ({spec.path()})"
            for spec in self.profile.models.values()
            if spec.role != Role.COORDINATOR and needs_local_folder(spec) and missing_weights(spec) is not None
        ]
        if missing:
            raise WeightsMissingError(
                f"weights for profile '{self.profile.name}' are not installed: missing {'; '.join(missing)}. "
                f"Run `care-viewer models fetch {self.profile.name}` or `care-viewer models import DIR`."
            )

    def backend(self, role: str) -> Any:
        """The backend for ``role`` (created on first use); None if the profile has none."""
        if role in self._roles:
            return self._roles[role]
        spec = self.profile.get(role)
        if spec is None:
            self._roles[role] = None
            return None
        key = role_key(spec)
        if key not in self._shared:
            self._shared[key] = load_backend(spec, device=self.device, dtype=self.dtype, profile=self.profile.name)
        self._roles[role] = self._shared[key]
        return self._roles[role]

    def dedup(self) -> "EntityDedup":
        if self._dedup is None:
            self._dedup = EntityDedup()
        return self._dedup

    def warm_up(self, roles: Sequence[str] = WARM_UP_ROLES) -> None:
        for role in roles:
            self.backend(role)

    def note_model(self, record: "RunRecord", role: str, backend: Any) -> None:
        """Copy a backend's provenance into the record (after it loaded: revision + hash known)."""
        info = getattr(backend, "info", None)
        if info is None:
            return
        record.models[role] = replace(info, role=role)
        warning = getattr(backend, "warning", None)
        if isinstance(warning, str) and warning:
            record.warn(f"{role} model: {warning}")


class EntityDedup:
    """MiniLM de-duplication: names -> (kept names, merges grouped by the kept name)."""

    def __init__(self) -> None:
        self.info: "ModelInfo | None" = None
        # Pairs of the last call kept apart although similar, because they name opposite sides.
        self.last_blocked: list[Any] = []

    def __call__(self, names: Any) -> "tuple[list[str], list[EntityMerge]]":
        from app.pipeline.entity_dedup import dedup_entities
        from app.pipeline.record import EntityMerge

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
