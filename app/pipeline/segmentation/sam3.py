"""Text-prompted (concept) segmentation with transformers' ``Sam3Model`` (``facebook/sam3``).

The entity name is SAM3's concept prompt. The vision encoder (the ViT, >95 % of the compute)
runs once per slice in :meth:`set_image`; :meth:`predict` encodes all entity names in one text
batch and runs the prompt-dependent heads (DETR encoder/decoder, mask decoder) against the
cached vision features, in chunks so memory stays bounded for long entity lists.

One foreground probability map per entity: we use SAM3's *semantic segmentation head*
(``semantic_seg``, sigmoid), upsampled with the processor's own
``post_process_semantic_segmentation``. SAM3 trains that head to mark every pixel belonging to
the prompted concept, which is exactly "where is <entity>" as one map with no instance score
threshold to choose, and its per-pixel probabilities are what the entropy confidence measures.
If a checkpoint has no semantic head we fall back to fusing the instance masks: per pixel the
max over queries of ``score_q * sigmoid(mask_q)``, ``score_q = sigmoid(logit_q) *
sigmoid(presence)`` (SAM3's own detection score), so a concept the presence head says is absent
yields a low map (empty mask, rejected) rather than a confident wrong one.

The semantic map does not see the presence head, so :meth:`predict_scored` returns
``sigmoid(presence)`` per prompt as the object score: it is recorded with every mask and,
with the profile's ``min_object_score``, gates acceptance (a concept SAM3 itself says is
absent is rejected however sharp its map).
"""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from app.pipeline.backends.device import choose_device
from app.pipeline.backends.provenance import folder_revision, manifest_sha256
from app.pipeline.types import ModelInfo, PipelineError, SegPrompt, WeightsMissingError

from .embedding_cache import EmbeddingCache

REPO_ID = "facebook/sam3"
_CACHE_SLICES = 2  # real SAM3 features are ~60 MB per slice in bf16
# The length Sam3Processor pads text prompts to (processing_sam3.py).
_TEXT_MAX_TOKENS = 32
_PROMPT_CHUNK = 4  # prompts decoded together against one (expanded, not copied) feature set
_HASH_LIMIT = 256 * 1024 * 1024  # hash small checkpoints at load; big ones use the manifest's sha


def weights_missing(path: Path) -> str | None:
    """None when ``path`` holds a transformers SAM3 checkpoint, else what is missing there."""
    if not (path / "config.json").is_file():
        return f"no config.json in {path}"
    if not any(path.glob("*.safetensors")):
        return f"no *.safetensors weights in {path}"
    if not ((path / "processor_config.json").is_file() or (path / "preprocessor_config.json").is_file()):
        return f"no processor_config.json in {path}"
    return None


def weights_present(path: Path) -> bool:
    return weights_missing(path) is None


def missing_message(path: Path, repo_id: str = REPO_ID) -> str:
    return (
        f"SAM3 text segmenter weights not found in {path}. Fetch them with `care-viewer models fetch` "
        f"({repo_id} is gated on Hugging Face: accept its licence and log in first), or copy a downloaded "
        f"snapshot there with `care-viewer models import`. Box prompts (LiteMedSAM) work without them."
    )


class Sam3Segmenter:
    """:class:`~app.pipeline.types.SegmenterBackend` for text (concept) prompts."""

    supports_text = True
    supports_box = False
    object_score_kind = "presence"

    def __init__(self, path: Path, repo_id: str = REPO_ID, revision: str = "", weights_sha256: str = "",
                 device: str | None = None, dtype: str | None = None) -> None:
        path = Path(path)
        if not weights_present(path):
            raise WeightsMissingError(missing_message(path, repo_id))
        import torch
        from transformers import Sam3Model, Sam3Processor

        # Same device policy as the VLMs (CARE_DEVICE / CARE_DTYPE override; CUDA bf16/fp16 else CPU fp32).
        choice = choose_device(device, dtype)
        self._device = torch.device(choice.device)
        self._dtype = choice.torch_dtype
        try:
            self.processor = Sam3Processor.from_pretrained(str(path))
            self.model = Sam3Model.from_pretrained(str(path), dtype=self._dtype).to(self._device).eval()
        except (OSError, ValueError) as exc:
            raise WeightsMissingError(f"SAM3 weights in {path} are incomplete or unreadable ({exc}); "
                                      "re-fetch them with `care-viewer models fetch`") from exc
        self.info = ModelInfo(
            role="segmenter", backend="sam3", repo_id=repo_id, revision=folder_revision(path, revision),
            weights_sha256=weights_sha256 or weights_hash(path),
            device=choice.device, dtype=choice.dtype, path=str(path),
        )
        self._cache: EmbeddingCache[tuple[object, tuple[int, int]]] = EmbeddingCache(_CACHE_SLICES)
        self._current: tuple[object, tuple[int, int]] | None = None
        self._lock = threading.Lock()

    # ----- SegmenterBackend ------------------------------------------------------------
    def set_image(self, image_rgb: np.ndarray, key: str) -> None:
        import torch

        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._current = hit
                return
            img = np.asarray(image_rgb)
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            if img.ndim != 3 or img.shape[2] != 3:
                raise PipelineError(f"SAM3 expects an (H, W, 3) RGB image, got shape {img.shape}")
            inputs = self.processor(images=np.ascontiguousarray(img, dtype=np.uint8), return_tensors="pt")
            pixel_values = inputs["pixel_values"].to(self._device, self._dtype)
            with torch.inference_mode():
                features = self.model.get_vision_features(pixel_values=pixel_values)
            entry = (features, (int(img.shape[0]), int(img.shape[1])))
            self._current = self._cache.put(key, entry)

    def predict(self, prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
        return self.predict_scored(prompts)[0]

    def predict_scored(self, prompts: Sequence[SegPrompt]) -> tuple[list[np.ndarray], list[float | None]]:
        """Probability maps and SAM3's presence score per prompt (None when the checkpoint has no presence head)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if not prompts:
            return [], []
        texts = []
        for p in prompts:
            if not p.text or not p.text.strip():
                raise PipelineError("SAM3 segments from a text (concept) prompt; this prompt has none")
            texts.append(p.text.strip())
        with self._lock:
            if self._current is None:
                raise PipelineError("SAM3: set_image() must be called before predict()")
            features, hw = self._current
            # Sam3Processor pads every prompt to 32 tokens but does not truncate, so a long
            # entity name would crash the batch; tokenize directly with the same padding and
            # truncate (SAM3's text encoder is trained on short noun phrases anyway).
            text_inputs = self.processor.tokenizer(
                texts, padding="max_length", max_length=_TEXT_MAX_TOKENS, truncation=True, return_tensors="pt"
            )
            ids = text_inputs["input_ids"].to(self._device)
            attn = text_inputs["attention_mask"].to(self._device)
            out: list[np.ndarray] = []
            presence: list[float | None] = []
            with torch.inference_mode():
                text_embeds = self.model.get_text_features(input_ids=ids, attention_mask=attn)
                for start in range(0, len(texts), _PROMPT_CHUNK):
                    sl = slice(start, start + _PROMPT_CHUNK)
                    n = len(texts[sl])
                    chunk_text = BaseModelOutputWithPooling(
                        last_hidden_state=text_embeds.last_hidden_state[sl],
                        pooler_output=text_embeds.pooler_output[sl],
                    )
                    outputs = self.model(
                        vision_embeds=_expand_features(features, n),
                        text_embeds=chunk_text,
                        attention_mask=attn[sl],
                    )
                    out.extend(self._foreground_maps(outputs, hw, n))
                    presence.extend(_presence(outputs, n))
        return out, presence

    # ----- helpers ---------------------------------------------------------------------
    def _foreground_maps(self, outputs, hw: tuple[int, int], n: int) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        if getattr(outputs, "semantic_seg", None) is not None:
            outputs.semantic_seg = outputs.semantic_seg.float()
            maps = self.processor.post_process_semantic_segmentation(
                outputs, target_sizes=[hw] * n, return_segmentation_scores=True
            )
            probs = [m["segmentation_scores"][0] for m in maps]
        else:
            scores = torch.sigmoid(outputs.pred_logits.float())  # (n, Q)
            if outputs.presence_logits is not None:
                scores = scores * torch.sigmoid(outputs.presence_logits.float())  # (n, 1) broadcast
            masks = torch.sigmoid(outputs.pred_masks.float())  # (n, Q, h, w)
            fused = (scores[:, :, None, None] * masks).amax(dim=1, keepdim=True)
            probs = list(F.interpolate(fused, size=hw, mode="bilinear", align_corners=False)[:, 0])
        return [np.ascontiguousarray(p.clamp(0.0, 1.0).cpu().numpy(), dtype=np.float32) for p in probs]


def _presence(outputs, n: int) -> list[float | None]:
    logits = getattr(outputs, "presence_logits", None)
    if logits is None:
        return [None] * n
    import torch

    return [float(v) for v in torch.sigmoid(logits.float()).reshape(n, -1)[:, 0].cpu().tolist()]


def _expand_features(features, n: int):
    """The cached single-image vision features viewed as a batch of ``n`` (no copy)."""
    if n == 1:
        return features
    return type(features)(
        last_hidden_state=features.last_hidden_state.expand(n, *features.last_hidden_state.shape[1:]),
        fpn_hidden_states=tuple(t.expand(n, *t.shape[1:]) for t in features.fpn_hidden_states),
        fpn_position_encoding=tuple(t.expand(n, *t.shape[1:]) for t in features.fpn_position_encoding),
    )


def weights_hash(folder: Path) -> str:
    """sha256 of the SAM3 weights: hashed now when small; for the 3.4 GB checkpoint the sha the
    install manifest recorded (if the file still has its size), else hashed once and cached in
    the folder's sidecar (``internvl.weights_sha256``). Never the profile's expected value: the
    record names what is on disk."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return ""
    if weights.stat().st_size <= _HASH_LIMIT:
        return _file_sha256(weights)
    from app.pipeline.backends.internvl import weights_sha256

    return manifest_sha256(folder, weights.name) or weights_sha256(folder)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
