"""InternVL3 (transformers' ``InternVLForConditionalGeneration``) as a ``VLMBackend``.

Stage 1 (entity proposal, InternVL3-2B-hf) and stage 3 (evidence-grounded VQA, InternVL3-8B-hf)
both run through this class. The model loads lazily on first use and stays warm between
questions; ``get_vlm`` hands out one instance per checkpoint folder and device, so two roles that
name the same checkpoint share its weights.

All requests of a ``generate`` call go through ONE ``model.generate``, which is what makes
CARE-Flow's three evidence passes cost little more than one. When the requests share a prompt
prefix (system, slice, question: ``app.pipeline.backends.shared_prefix``) it is prefilled once and
its KV cache reused by every row; otherwise (or with ``share_prefix = false``) each row is
prefilled in one left-padded batch. ``Generation.shared_prefix_tokens`` records which ran.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from app.pipeline.backends.device import DeviceChoice, choose_device, is_out_of_memory, release_cuda_memory
from app.pipeline.backends.instances import instance_key, release_instances, shared_instance
from app.pipeline.backends.logprobs import ChosenTokenLogprobs
from app.pipeline.backends.provenance import folder_revision
from app.pipeline.backends import shared_prefix
from app.pipeline.profiles import ModelSpec, models_dir
from app.pipeline.token_text import CONTROL_TOKENS
from app.pipeline.types import Generation, ModelInfo, PipelineError, VLMRequest, WeightsMissingError
from app.pipeline.vocab import BackendKind

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin")
SHA_SIDECAR = ".care-weights-sha256.json"


# --------------------------------------------------------------------------- weights


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def folder_missing(folder: Path) -> str | None:
    """None when ``folder`` holds an InternVL checkpoint (config + weights), else why not."""
    if not folder.is_dir():
        return f"no folder {folder}"
    if not (folder / "config.json").is_file():
        return f"no config.json in {folder}"
    if not weight_files(folder):
        return f"no weight files ({', '.join('*' + s for s in WEIGHT_SUFFIXES)}) in {folder}"
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_sha256(folder: Path) -> str:
    """sha256 of the weights (one file: its own hash; shards: hash of "name sha" lines).

    Hashing 16 GB takes a minute, so results are cached in a sidecar keyed by each file's
    size and mtime and recomputed only for files that changed.
    """
    files = weight_files(folder)
    sidecar = folder / SHA_SIDECAR
    try:
        cache: dict[str, Any] = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        cache = {}
    fresh: dict[str, Any] = {}
    for f in files:
        st = f.stat()
        entry = cache.get(f.name)
        if not (isinstance(entry, dict) and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns):
            entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256_file(f)}
        fresh[f.name] = entry
    if fresh != cache:
        try:
            sidecar.write_text(json.dumps(fresh, indent=1, sort_keys=True))
        except OSError:  # read-only models folder: hash again next start, still correct
            log.info("cannot write %s; weights will be re-hashed next start", sidecar)
    if len(files) == 1:
        return fresh[files[0].name]["sha256"]
    lines = "".join(f"{name} {fresh[name]['sha256']}\n" for name in sorted(fresh))
    return hashlib.sha256(lines.encode()).hexdigest()


def _missing_message(spec: ModelSpec, folder: Path, profile: str | None) -> str:
    profile = profile or "<profile>"
    return (
        f"{spec.repo_id or spec.folder_name} weights are not installed in {folder}: "
        f"run `care-viewer models fetch {profile}` (or `care-viewer models import DIR` with a downloaded copy)"
    )


# --------------------------------------------------------------------------- images


def _to_pil(image: np.ndarray, index: int):
    """(H, W, 3) uint8 RGB -> PIL; grey or RGBA arrays are converted, anything else is refused."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise PipelineError(f"image {index + 1}: expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise PipelineError(f"image {index + 1}: expected an (H, W, 3) RGB array, got shape {arr.shape}")
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def _collapse_image_runs(text: str, token: str) -> str:
    """Write a run of N image-context tokens as ``<IMG_CONTEXT>*N`` so records stay readable."""
    pattern = re.compile(f"(?:{re.escape(token)})+")
    return pattern.sub(lambda m: f"{token}*{len(m.group(0)) // len(token)}", text)


def _blank_texts(conv: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation with every text part emptied: what the template alone contributes."""
    return [{**m, "content": [{**c, "text": ""} if c.get("type") == "text" else c for c in m["content"]]} for m in conv]


def _check_structure(text: str, skeleton: str, tokens: Sequence[str]) -> None:
    """The templated prompt has exactly the turns and image slots of its template skeleton.

    The pipeline's prompts write outside text through ``prompt_safety.literal``, so this only
    fails for a caller that put raw template tokens in a prompt: refused in one line rather
    than a processor error (an extra image token) or a silently faked turn (a role token)."""
    wrong = [f"{t} x{text.count(t)} (the template has {skeleton.count(t)})"
             for t in dict.fromkeys(tokens) if text.count(t) != skeleton.count(t)]
    if wrong:
        raise PipelineError("the prompt text contains chat-template tokens: " + ", ".join(wrong))


# --------------------------------------------------------------------------- backend


class InternVLBackend:
    """A lazily loaded InternVL checkpoint answering batches of chat requests."""

    def __init__(
        self,
        spec: ModelSpec,
        base_dir: Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        profile: str | None = None,
    ) -> None:
        self.spec = spec
        self.path = spec.path(base_dir or models_dir())
        self.profile = profile
        # InternVL3's language model is Qwen2.5: never float16 by default (it overflows).
        self.device_choice: DeviceChoice = choose_device(
            device or spec.options.get("device"), dtype or spec.options.get("dtype"), fp16_safe=False
        )
        self.info = ModelInfo(
            role=str(spec.role),
            backend=BackendKind.INTERNVL.value,
            repo_id=spec.repo_id,
            revision=spec.revision,
            device=self.device_choice.device,
            dtype=self.device_choice.dtype,
            path=str(self.path),
        )
        self._model = None
        self._processor = None
        self._lock = threading.RLock()
        self._strip_ids: set[int] = set()
        self._stop_ids: list[int] = []
        self.load_seconds = 0.0
        # Prefill a batch's common prompt prefix once (False: every row on its own, the fallback).
        self.share_prefix = bool(spec.options.get("share_prefix", True))
        self._can_share = False

    # -- state

    @property
    def warning(self) -> str | None:
        """Message for the user about the run (CPU slowness), or None."""
        return self.device_choice.warning

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def info_for(self, role: str) -> ModelInfo:
        """Provenance copy for one role (a shared checkpoint plays several)."""
        return dataclasses.replace(self.info, role=role)

    def check_weights(self) -> None:
        """Raise WeightsMissingError unless the folder holds a config and weights."""
        if folder_missing(self.path) is not None:
            raise WeightsMissingError(_missing_message(self.spec, self.path, self.profile))

    def ensure_loaded(self) -> None:
        with self._lock:
            if self._model is None:
                self._load()

    def unload(self) -> None:
        with self._lock:
            self._model = None
            self._processor = None
            release_cuda_memory()

    def _load(self) -> None:
        self.check_weights()
        from transformers import AutoModelForImageTextToText, AutoProcessor

        started = time.perf_counter()
        sha = weights_sha256(self.path)
        revision = folder_revision(self.path, self.spec.revision)
        # On a GPU, load straight onto it: staging 16 GB of bf16 weights in RAM first is slow.
        placement = {"device_map": self.device_choice.device} if self.device_choice.device != "cpu" else {}
        try:
            processor = AutoProcessor.from_pretrained(self.path)
            model = AutoModelForImageTextToText.from_pretrained(
                self.path, dtype=self.device_choice.torch_dtype, **placement
            )
        except Exception as exc:  # noqa: BLE001 - every load failure becomes one readable line
            if is_out_of_memory(exc):
                release_cuda_memory()
                raise PipelineError(self._oom_message("loading")) from exc
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PipelineError(f"cannot load {self.spec.repo_id} from {self.path}: {reason}") from exc
        model.eval()
        if type(model).__name__ != "InternVLForConditionalGeneration":
            raise PipelineError(
                f"{self.path} holds a {type(model).__name__}, not an InternVL checkpoint (expected an -hf repo)"
            )
        tok = processor.tokenizer
        tok.padding_side = "left"  # decoder-only batching: prompts must end at the same column
        ids = {t: tok.convert_tokens_to_ids(t) for t in CONTROL_TOKENS}
        self._strip_ids = {i for i in ids.values() if isinstance(i, int) and i != tok.unk_token_id}
        if tok.pad_token_id is not None:
            self._strip_ids.add(tok.pad_token_id)
        eos = model.generation_config.eos_token_id
        eos_list = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
        self._stop_ids = sorted({*eos_list, ids["<|im_end|>"], ids["<|endoftext|>"]} - {None, tok.unk_token_id})
        self._processor, self._model = processor, model
        self._can_share = shared_prefix.can_share(model)
        self.info = dataclasses.replace(self.info, revision=revision, weights_sha256=sha)
        self.load_seconds = time.perf_counter() - started

    def _oom_message(self, doing: str) -> str:
        need = f" (needs about {self.spec.vram_gb:g} GB of GPU memory)" if self.spec.vram_gb else ""
        return (
            f"the GPU ran out of memory {doing} {self.spec.repo_id}{need}: "
            "close other GPU programs or try a smaller profile, e.g. --profile workstation"
        )

    # -- inference

    def render_prompts(self, requests: Sequence[VLMRequest]) -> list[str]:
        """The chat-templated text of each request (one ``<IMG_CONTEXT>`` per image, unexpanded)."""
        self.ensure_loaded()
        conversations = []
        for req in requests:
            conv: list[dict[str, Any]] = []
            if req.system:
                conv.append({"role": "system", "content": [{"type": "text", "text": req.system}]})
            content: list[dict[str, Any]] = []
            for i, _ in enumerate(req.images, start=1):
                if len(req.images) > 1 or req.lead:  # InternVL's multi-image form: "Image-1: <image>\n..."
                    content.append({"type": "text", "text": f"Image-{i}: "})
                content.append({"type": "image"})
                if i == 1 and req.lead:  # the common part (question) before the evidence image
                    content.append({"type": "text", "text": req.lead})
            content.append({"type": "text", "text": req.prompt if req.images else req.lead + req.prompt})
            conv.append({"role": "user", "content": content})
            conversations.append(conv)
        texts = [self._template(conv) for conv in conversations]
        for conv, text in zip(conversations, texts):
            _check_structure(text, self._template(_blank_texts(conv)), self._structure_tokens())
        return texts

    def _template(self, conv: list[dict[str, Any]]) -> str:
        return self._processor.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)

    def _structure_tokens(self) -> list[str]:
        """The tokenizer's added tokens that shape a chat: roles, image slots, padding."""
        tok = self._processor.tokenizer
        return [t for t in (*CONTROL_TOKENS, self._processor.image_token, tok.eos_token, tok.pad_token)
                if t and tok.convert_tokens_to_ids(t) not in (None, tok.unk_token_id)]

    def generate(
        self,
        requests: Sequence[VLMRequest],
        max_new_tokens: int = 512,
        do_sample: bool = False,
        temperature: float = 1.0,
        min_new_tokens: int | None = None,
    ) -> list[Generation]:
        """Answer all requests in one batched ``model.generate`` (greedy unless ``do_sample``).

        ``min_new_tokens`` suppresses the stop tokens until that length (benchmarks use it to
        compare equal amounts of decoding).
        """
        if not requests:
            return []
        with self._lock:
            self.ensure_loaded()
            try:
                return self._generate(requests, max_new_tokens, do_sample, temperature, min_new_tokens)
            except Exception as exc:  # noqa: BLE001
                if is_out_of_memory(exc):
                    release_cuda_memory()
                    raise PipelineError(self._oom_message("answering with")) from exc
                raise

    def _generate(
        self,
        requests: Sequence[VLMRequest],
        max_new_tokens: int,
        do_sample: bool,
        temperature: float,
        min_new_tokens: int | None,
    ) -> list[Generation]:
        import torch

        processor, model = self._processor, self._model
        tok = processor.tokenizer
        texts = self.render_prompts(requests)
        images = [_to_pil(img, i) for req in requests for i, img in enumerate(req.images)]
        images_kwargs = {
            k: self.spec.options[k] for k in ("max_patches", "min_patches", "crop_to_patches") if k in self.spec.options
        }
        inputs = processor(
            text=texts,
            images=images or None,
            padding=True,
            padding_side="left",
            return_tensors="pt",
            **images_kwargs,
        )
        inputs = inputs.to(model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.device_choice.torch_dtype)

        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature}
            if do_sample
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        if min_new_tokens:
            sampling["min_new_tokens"] = min_new_tokens
        from transformers import LogitsProcessorList

        # Chosen-token log-probs step by step: no (steps x vocab) score stack is kept, and NaN
        # logits (fp16 overflow) stop the call with a message instead of decoding '!!!!'.
        chosen = ChosenTokenLogprobs(self.device_choice.dtype)
        started = time.perf_counter()
        plan = None
        if self.share_prefix and self._can_share and len(requests) > 1:
            rows = [ids[m.bool()] for ids, m in zip(inputs["input_ids"], inputs["attention_mask"])]
            plan = shared_prefix.plan_prefix(rows, inputs.get("pixel_values"), processor.image_token_id,
                                             processor.image_seq_length)
        with torch.inference_mode():
            if plan is not None:
                inputs = shared_prefix.prefill(model, plan, inputs.get("pixel_values"), tok.pad_token_id)
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                output_scores=False,
                return_dict_in_generate=True,
                logits_processor=LogitsProcessorList([chosen]),
                eos_token_id=self._stop_ids,
                pad_token_id=tok.pad_token_id,
                **sampling,
            )
            logprobs = chosen.finish(out.sequences)
        seconds = time.perf_counter() - started
        prompt_len = inputs["input_ids"].shape[1]  # the shared path's rows: prefix, padding, suffix

        results = []
        for row, req_text in enumerate(texts):
            gen_ids = out.sequences[row, prompt_len:].tolist()
            row_lp = logprobs[row].float().cpu().tolist()
            kept_ids, kept_lp = [], []
            for tid, lp in zip(gen_ids, row_lp):
                if tid in self._stop_ids:
                    break
                if tid in self._strip_ids:
                    continue
                kept_ids.append(tid)
                kept_lp.append(min(0.0, float(lp)))  # rounding can give +1e-7
            pieces = _token_pieces(tok, kept_ids)
            prompt_ids = [t for t, m in zip(inputs["input_ids"][row].tolist(), inputs["attention_mask"][row].tolist()) if m]
            prompt_text = _collapse_image_runs(
                tok.decode(prompt_ids, skip_special_tokens=False), processor.image_token
            )
            results.append(
                Generation(
                    text="".join(pieces),
                    tokens=pieces,
                    token_logprobs=kept_lp,
                    prompt_text=prompt_text,
                    seconds=seconds,  # the batch shares one forward pass: wall time of the call
                    shared_prefix_tokens=plan.length if plan is not None else 0,
                )
            )
        return results


def _token_pieces(tokenizer, ids: list[int]) -> list[str]:
    """Text contributed by each token, such that ``"".join(pieces)`` is the decoded text.

    Byte-level BPE splits multi-byte characters across tokens, so pieces come from decoding
    growing prefixes rather than single ids (a lone id may decode to U+FFFD).
    """
    pieces: list[str] = []
    previous = ""
    for end in range(1, len(ids) + 1):
        current = tokenizer.decode(ids[:end], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if not current.startswith(previous):  # a completed multi-byte char replaced a U+FFFD
            common = 0
            while common < min(len(previous), len(current)) and previous[common] == current[common]:
                common += 1
            pieces[-1] = pieces[-1][: max(0, len(pieces[-1]) - (len(previous) - common))]
            pieces.append(current[common:])
        else:
            pieces.append(current[len(previous):])
        previous = current
    return pieces


# --------------------------------------------------------------------------- sharing


def get_vlm(
    spec: ModelSpec,
    base_dir: Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    profile: str | None = None,
) -> InternVLBackend:
    """The shared backend for this checkpoint folder on this device (created, not loaded).

    Lives in the process-wide cache of ``backends.instances`` (the registry's ``load_backend``
    comes here), so every role, pipeline and coordinator naming the folder shares one model.
    """
    if spec.backend != BackendKind.INTERNVL:
        raise PipelineError(f"role {spec.role.value!r} uses backend {spec.backend.value!r}, not internvl")
    choice = choose_device(device or spec.options.get("device"), dtype or spec.options.get("dtype"), fp16_safe=False)
    key = instance_key(spec, base_dir or models_dir(), (choice.device, choice.dtype))
    # The backend resolves the same choice again, keeping its warnings (float32 fallback, CPU).
    return shared_instance(key, lambda: InternVLBackend(spec, base_dir, device, dtype, profile))


def clear_vlm_cache() -> None:
    """Drop every shared InternVL backend (frees their weights); used on profile switch and in tests."""
    release_instances({BackendKind.INTERNVL})
