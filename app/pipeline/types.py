"""Contracts between the pipeline stages and their model backends (no Qt, no torch).

Every backend (local transformers, LiteMedSAM, a remote endpoint later) implements one
of the Protocols below, so the engine, the GUI worker, the CLI and the tests drive them
the same way.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

Box = tuple[int, int, int, int]
"""Pixel box ``(x0, y0, x1, y1)`` in the slice's (column, row) coordinates, x1/y1 exclusive."""


class EvidenceType(str, enum.Enum):
    CROP = "crop"  # zoom-in crop around one accepted mask, from the original intensities
    MASK = "mask"  # binary mask as a *second image input*, never painted over the pixels
    GLOBAL = "global"  # whole image, no local evidence


class Stage(str, enum.Enum):
    ENTITIES = "entities"
    MASKS = "masks"
    EVIDENCE = "evidence"
    ANSWER = "answer"
    REVIEW = "review"


@dataclass
class ModelInfo:
    """Provenance of one loaded model, copied into every run record."""

    role: str  # "entity" | "segmenter" | "vqa" | "coordinator" | "encoder"
    backend: str  # "internvl" | "sam3" | "litemedsam" | "minilm" | "remote" ...
    repo_id: str
    revision: str = ""
    weights_sha256: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    path: str = ""


@dataclass
class VLMRequest:
    """One chat turn for a vision-language model: images first, then the text; with ``lead``,
    Image-1, then ``lead``, then the other images, then ``prompt`` (CARE-Flow's passes share
    everything up to their evidence image, so a backend can prefill that prefix once)."""

    images: list[np.ndarray]  # (H, W, 3) uint8 RGB each
    prompt: str
    system: str | None = None
    lead: str = ""  # text right after the first image (the question), before the evidence image


@dataclass
class Generation:
    """A model's output with the per-token evidence needed for uncertainty and ties."""

    text: str
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    prompt_text: str = ""  # the fully templated prompt actually sent (for the record)
    seconds: float = 0.0
    # Prompt tokens prefilled once for the whole batch and shared with its other requests
    # (system, slice image, question); 0: prefilled on its own; None: the backend cannot say.
    shared_prefix_tokens: int | None = None
    # Why the token list is shorter than the text, or empty (a server's tokens that could not be
    # matched to its text): the per-token figures are then absent, and the record says why.
    tokens_note: str = ""


@runtime_checkable
class VLMBackend(Protocol):
    info: ModelInfo

    def generate(self, requests: Sequence[VLMRequest], max_new_tokens: int = 512) -> list[Generation]:
        """Answer every request; backends that can batch do so in one call."""
        ...


@dataclass
class SegPrompt:
    text: str | None = None
    box: Box | None = None


@runtime_checkable
class SegmenterBackend(Protocol):
    info: ModelInfo
    supports_text: bool
    supports_box: bool

    def set_image(self, image_rgb: np.ndarray, key: str) -> None:
        """Embed the image once; ``key`` identifies it so a repeat call is free."""
        ...

    def predict(self, prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
        """Foreground probability map (H, W) float32 in [0, 1] per prompt, image-sized."""
        ...


class PipelineError(RuntimeError):
    """A failure with a message fit for a radiologist (no traceback needed)."""


class WeightsMissingError(PipelineError):
    """The profile's weights are not installed; the message says how to get them."""


class Cancelled(PipelineError):
    pass
