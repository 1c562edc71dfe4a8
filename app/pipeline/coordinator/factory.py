"""The coordinator a profile asks for.

- ``[profiles.X.coordinator]`` with ``backend = "remote"``: an OpenAI-compatible endpoint
  (GPT-5, a hospital server), text only unless ``send_images = true`` and consented.
- ``backend = "internvl"``: a local checkpoint (shared with the VQA role when it names the
  same folder, so nothing extra loads).
- no coordinator role: the profile's own VQA model, already loaded, coordinates.

Options beside the backend's (``uncertainty_threshold``, ``reground``, ``may_revise``,
``max_extra_rounds``, ``max_new_tokens``) configure the coordinator itself; keyword overrides
win (CLI flags). ``may_revise`` absent: on for a remote coordinator (the paper's GPT-5), off
for a local model (the paper found weaker coordinators over-rewrite expert answers).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.pipeline.types import PipelineError
from app.pipeline.vocab import BackendKind, Role

from .coordinator import CareCoordinator, CoordConfig
from .local_backend import VLMCoordinatorBackend

if TYPE_CHECKING:
    from app.pipeline.stages import PipelineHost
    from app.pipeline.remote.consent import ConsentStore


def build_coordinator(pipeline: "PipelineHost", *, consent: "ConsentStore | None" = None,
                      **overrides: Any) -> CareCoordinator:
    spec = pipeline.profile.get(Role.COORDINATOR)
    options: dict[str, Any] = dict(spec.options) if spec is not None else {}
    options.setdefault("may_revise", spec is not None and spec.backend == BackendKind.REMOTE)
    if spec is None:
        backend: Any = VLMCoordinatorBackend(lambda: pipeline.backend(Role.VQA), label="vqa")
        if pipeline.max_new_tokens is not None and "max_new_tokens" not in overrides:
            # The user capped generation for this pipeline: the coordinator, on the same model, follows.
            options["max_new_tokens"] = max(pipeline.max_new_tokens, 16)
    elif spec.backend == BackendKind.REMOTE:
        from .remote_backend import RemoteCoordinatorBackend

        backend = RemoteCoordinatorBackend(spec, consent=consent)
    elif spec.backend == BackendKind.INTERNVL:
        from app.pipeline.backends.internvl import get_vlm

        backend = VLMCoordinatorBackend(
            lambda: get_vlm(spec, device=pipeline.device, dtype=pipeline.dtype, profile=pipeline.profile.name),
            label=spec.repo_id,
        )
    else:
        raise PipelineError(f"profile '{pipeline.profile.name}': coordinator backend {spec.backend!r} is not "
                            "supported (use remote or internvl)")
    return CareCoordinator(backend, CoordConfig.from_options(options, **overrides))
