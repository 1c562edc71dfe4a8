"""The model provenance a run recorded, as DICOM algorithm identification."""
from __future__ import annotations

import highdicom as hd
from pydicom.sr.codedict import codes

from app.pipeline.record import MaskRecord, RunRecord
from app.pipeline.types import ModelInfo
from app.pipeline.vocab import PromptType, Role

from .text import short

NOT_RECORDED = "not recorded"


def segmenter_info(record: RunRecord, mask: MaskRecord) -> ModelInfo | None:
    """The model that made ``mask``: the box segmenter for a box prompt, else the text segmenter."""
    roles = (Role.BOX_SEGMENTER, Role.SEGMENTER) if mask.prompt_type == PromptType.BOX else (
        Role.SEGMENTER, Role.BOX_SEGMENTER)
    for role in roles:
        info = record.models.get(role.value)
        if info is not None and info.backend == mask.backend:
            return info
    return next((i for i in record.models.values() if i.backend == mask.backend), None)


def algorithm(info: ModelInfo | None, backend: str, notes: list[str]) -> hd.AlgorithmIdentificationSequence:
    """Name = the model's repository id, version = its revision, the weights sha256 as a parameter."""
    name = short(info.repo_id if info and info.repo_id else backend, 64, notes, "algorithm name")
    version = short(info.revision if info and info.revision else NOT_RECORDED, 64, notes, "algorithm version")
    params = {"backend": backend, "weights_sha256": (info.weights_sha256 if info and info.weights_sha256
                                                     else NOT_RECORDED)}
    return hd.AlgorithmIdentificationSequence(name=name, family=codes.cid7162.ArtificialIntelligence,
                                              version=version, parameters=params)


def model_lines(record: RunRecord) -> list[str]:
    """One line per model role of the run: role, backend, repository, revision, weights sha256."""
    out = []
    for role, m in sorted(record.models.items()):
        out.append(f"{role}: {m.backend} {m.repo_id or '-'} revision {m.revision or NOT_RECORDED} "
                   f"weights sha256 {m.weights_sha256 or NOT_RECORDED}")
    return out
