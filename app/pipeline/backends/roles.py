"""The models of one profile, by CARE role: what the engine asks for ``backend("vqa")``.

Roles resolve through the backend registry (``app.pipeline.backends.registry``): weights-holding
backends come from its process-wide cache, and roles of this profile naming one checkpoint (or
one remote endpoint + model) share one instance.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from app.pipeline.backends.instances import InstanceKey, release_instance
from app.pipeline.backends.offload import EARLY_STAGES, VQA_STAGE, MemoryPlan, choose_plan
from app.pipeline.backends.registry import is_remote, load_backend, missing_weights, needs_local_folder, role_key
from app.pipeline.types import WeightsMissingError
from app.pipeline.vocab import BackendKind, OffloadPlan, Role

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
        self._plan: MemoryPlan | None = None

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
        """The backend for ``role`` (created on first use); None if the profile has none.

        Under the ``unload-before-vqa`` plan, asking for one stage's model first unloads the
        other stage's (see :mod:`app.pipeline.backends.offload`)."""
        spec = self.profile.get(role)
        if spec is None:
            self._roles[role] = None
            return None
        plan = self.memory_plan().plan
        if plan == OffloadPlan.UNLOAD_BEFORE_VQA:
            self._evict_other_stage(Role(role), role_key(spec))
        if role in self._roles:
            return self._roles[role]
        key = role_key(spec)
        if key not in self._shared:
            device, dtype = self.device, self.dtype
            if plan == OffloadPlan.CPU_OFFLOAD and Role(role) in EARLY_STAGES:
                device, dtype = "cpu", "float32"  # only the VQA model on the GPU
            self._shared[key] = load_backend(spec, device=device, dtype=dtype, profile=self.profile.name)
        self._roles[role] = self._shared[key]
        return self._roles[role]

    def memory_plan(self) -> MemoryPlan:
        """The offload plan of this profile (chosen once, from the free VRAM, on first use)."""
        if self._plan is None:
            self._plan = choose_plan(self._free_vram(), self._stage_sizes())
        return self._plan

    def _stage_sizes(self) -> dict[str, float]:
        """role -> GB on the GPU (profiles.toml ``vram_gb``), each shared checkpoint counted once."""
        sizes: dict[str, float] = {}
        seen: set[InstanceKey] = set()
        for role, spec in self.profile.models.items():
            if is_remote(spec) or role_key(spec) in seen:
                continue
            seen.add(role_key(spec))
            sizes[str(role)] = float(spec.vram_gb)
        return sizes

    def _free_vram(self) -> float | None:
        if not any(not is_remote(s) and s.backend != BackendKind.MINILM for s in self.profile.models.values()):
            return None  # nothing local to place: no torch import for a remote-only profile
        from app.pipeline.backends.device import choose_device
        from app.pipeline.backends.offload import free_vram_bytes

        return free_vram_bytes(choose_device(self.device, self.dtype).device)

    def _evict_other_stage(self, role: Role, keep: InstanceKey) -> None:
        """Free the GPU memory of the other stage's models (never ``keep``, the one asked for)."""
        other = EARLY_STAGES if role in VQA_STAGE else VQA_STAGE if role in EARLY_STAGES else frozenset()
        for name in [r for r in self._roles if Role(r) in other]:
            instance = self._roles[name]
            spec = self.profile.get(name)
            if instance is None or spec is None or role_key(spec) == keep or is_remote(spec):
                continue
            unload = getattr(instance, "unload", None)
            if callable(unload):  # InternVL: drops its weights, reloads lazily on the next request
                unload()
            else:  # segmenters hold their weights from construction: drop the instance
                self._roles.pop(name)
                self._shared.pop(role_key(spec), None)
                release_instance(instance)

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
        plan = self.memory_plan()
        record.offload_plan, record.offload_reason = plan.plan, plan.reason
        if plan.warning:
            record.warn(plan.warning)
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
