"""InternVLBackend on the tiny random-initialised InternVL checkpoint (real transformers code)."""
from __future__ import annotations

import dataclasses
import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.pipeline.backends import device as device_mod  # noqa: E402
from app.pipeline.backends import internvl  # noqa: E402
from app.pipeline.backends.internvl import InternVLBackend, clear_vlm_cache, get_vlm  # noqa: E402
from app.pipeline.parsing import answer_logprobs, parse_think_answer  # noqa: E402
from app.pipeline.profiles import ModelSpec, load_profile  # noqa: E402
from app.pipeline.prompts import evidence_request  # noqa: E402
from app.pipeline.types import EvidenceType, Generation, PipelineError, VLMBackend, VLMRequest, WeightsMissingError  # noqa: E402
from tests.tiny_models import TINY_INTERNVL_DIR, ensure_tiny_models  # noqa: E402

MAX_NEW = 24


@pytest.fixture(scope="module")
def tiny_dir(tiny_models_dir) -> Path:
    return tiny_models_dir


@pytest.fixture(scope="module")
def backend(tiny_dir: Path) -> InternVLBackend:
    clear_vlm_cache()
    b = get_vlm(load_profile("tiny").get("vqa"), tiny_dir, device="cpu", profile="tiny")
    yield b
    clear_vlm_cache()


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    # A CT-like slice (one 448 tile), a wide crop (2 tiles + thumbnail) and a binary mask.
    slice_ = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (120, 260, 3), dtype=np.uint8)
    mask = np.zeros((512, 512, 3), dtype=np.uint8)
    mask[200:300, 150:260] = 255
    return {"slice": slice_, "crop": crop, "mask": mask}


@pytest.fixture(scope="module")
def batch(backend: InternVLBackend, images) -> tuple[list[VLMRequest], list[Generation]]:
    q = "Is there a nodule in the left lung?"
    requests = [
        evidence_request(q, EvidenceType.GLOBAL, [images["slice"]]),
        dataclasses.replace(evidence_request(q, EvidenceType.CROP, [images["slice"], images["crop"]], ["left lung"]),
                            system="Be brief."),
        evidence_request(q, EvidenceType.GLOBAL, [images["slice"]], ["left lung"]),
    ]
    return requests, backend.generate(requests, max_new_tokens=MAX_NEW)


def test_tiny_models_are_not_rewritten_when_up_to_date(tiny_dir: Path):
    weights = tiny_dir / TINY_INTERNVL_DIR / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert ensure_tiny_models(tiny_dir) == tiny_dir
    assert weights.stat().st_mtime_ns == before


def test_backend_is_lazy_and_satisfies_protocol(tiny_dir: Path):
    clear_vlm_cache()
    b = get_vlm(load_profile("tiny").get("entity"), tiny_dir, device="cpu")
    assert isinstance(b, VLMBackend)
    assert not b.loaded  # constructing must not load 100s of MB on a GPU-less start
    assert b.info.weights_sha256 == ""
    clear_vlm_cache()


def test_batched_generate_returns_aligned_logprobs(batch, backend: InternVLBackend):
    requests, gens = batch
    assert backend.loaded
    assert len(gens) == 3
    for gen in gens:
        assert 0 < len(gen.tokens) <= MAX_NEW
        assert len(gen.token_logprobs) == len(gen.tokens)
        assert all(lp <= 0.0 and np.isfinite(lp) for lp in gen.token_logprobs)
        assert "".join(gen.tokens) == gen.text
        assert "<|im_end|>" not in gen.text and "<|endoftext|>" not in gen.text
        assert gen.seconds > 0


def test_control_tokens_never_reach_the_text(backend: InternVLBackend, images):
    """Make the model emit Qwen's <|vision_pad|> placeholder: it is stripped from the text."""
    from app.pipeline.backends import internvl

    backend.ensure_loaded()
    pad = backend._processor.tokenizer.convert_tokens_to_ids("<|vision_pad|>")

    def force_pad(_module, _inputs, logits):  # every decoding step picks <|vision_pad|>
        logits[..., pad] += 1e4
        return logits

    handle = backend._model.get_output_embeddings().register_forward_hook(force_pad)
    try:
        (gen,) = backend.generate([VLMRequest([images["slice"]], "What is shown?")], max_new_tokens=3)
    finally:
        handle.remove()
    assert "<|vision_pad|>" in internvl.CONTROL_TOKENS
    assert gen.text == "" and gen.tokens == [] and gen.token_logprobs == []


def test_prompt_text_records_image_markers_and_template(batch):
    requests, gens = batch
    for req, gen in zip(requests, gens):
        assert gen.prompt_text.count("<img>") == len(req.images)
        assert gen.prompt_text.count("</img>") == len(req.images)
        assert gen.prompt_text.startswith("<|im_start|>")
        assert gen.prompt_text.endswith("<|im_start|>assistant\n")
        assert req.prompt in gen.prompt_text
        assert "<|endoftext|>" not in gen.prompt_text  # left padding is not part of the prompt
    # One 448 tile for the square slice; the wide crop is tiled (2 tiles + thumbnail) like the real model.
    assert "<img><IMG_CONTEXT>*256</img>" in gens[0].prompt_text
    assert "<img><IMG_CONTEXT>*768</img>" in gens[1].prompt_text
    assert "<|im_start|>system\nBe brief.<|im_end|>" in gens[1].prompt_text


def test_logprobs_match_a_teacher_forced_forward_pass(backend: InternVLBackend, images, monkeypatch):
    """The returned log-probs are those of the chosen tokens under the model (not off by one)."""
    import torch

    model = backend._model
    captured = {}
    original = model.generate

    def spy(**kwargs):
        out = original(**kwargs)
        captured.update(kwargs=kwargs, sequences=out.sequences)
        return out

    monkeypatch.setattr(model, "generate", spy)
    req = evidence_request("Is the mask on the liver?", "mask", [images["slice"], images["mask"]], ["liver"])
    (gen,) = backend.generate([req], max_new_tokens=8)

    prompt_ids = captured["kwargs"]["input_ids"]
    start = prompt_ids.shape[1]
    stop = set(backend._stop_ids)
    gen_ids = []
    for t in captured["sequences"][0, start:].tolist():
        if t in stop:
            break
        gen_ids.append(t)
    assert len(gen_ids) == len(gen.token_logprobs)  # the tiny model emits no control tokens mid-answer here
    ids = captured["sequences"][:, : start + len(gen_ids)]
    with torch.inference_mode():
        logits = model(
            input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=captured["kwargs"]["pixel_values"]
        ).logits[0]
    logp = torch.log_softmax(logits.float(), dim=-1)
    expected = [logp[start - 1 + i, tid].item() for i, tid in enumerate(gen_ids)]
    np.testing.assert_allclose(gen.token_logprobs, expected, atol=1e-4)


def test_one_instance_shared_and_kept_warm(backend: InternVLBackend, tiny_dir: Path, batch):
    profile = load_profile("tiny")
    entity = get_vlm(profile.get("entity"), tiny_dir, device="cpu")
    assert entity is backend  # entity and vqa roles name the same checkpoint
    model = backend._model
    backend.ensure_loaded()
    backend.generate([VLMRequest([], "Say yes.")], max_new_tokens=2)
    assert backend._model is model  # not reloaded between questions
    assert backend.info_for("entity").role == "entity" and backend.info.repo_id == "local/tiny-internvl"


def test_model_info_has_weights_hash_and_device(backend: InternVLBackend, tiny_dir: Path, batch):
    weights = tiny_dir / TINY_INTERNVL_DIR / "model.safetensors"
    assert backend.info.weights_sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert backend.info.device == "cpu" and backend.info.dtype == "float32"
    assert backend.warning == device_mod.CPU_WARNING


def test_weights_hash_is_cached_in_a_sidecar(tmp_path: Path, monkeypatch):
    (tmp_path / "model-00001-of-00002.safetensors").write_bytes(b"a" * 1000)
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"b" * 10)
    first = internvl.weights_sha256(tmp_path)
    assert (tmp_path / internvl.SHA_SIDECAR).is_file()

    def must_not_hash(path):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(internvl, "_sha256_file", must_not_hash)
    assert internvl.weights_sha256(tmp_path) == first
    monkeypatch.undo()
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"c" * 11)  # size changes -> re-hash
    assert internvl.weights_sha256(tmp_path) != first


def test_empty_folder_raises_weights_missing(tmp_path: Path):
    spec = ModelSpec(role="vqa", backend="internvl", repo_id="OpenGVLab/InternVL3-8B-hf")
    (tmp_path / spec.folder_name).mkdir()
    b = InternVLBackend(spec, tmp_path, device="cpu", profile="workstation")
    with pytest.raises(WeightsMissingError) as err:
        b.generate([VLMRequest([], "hello")])
    msg = str(err.value)
    assert "care-viewer models fetch workstation" in msg and "models import" in msg
    assert str(tmp_path / spec.folder_name) in msg


def test_corrupt_weights_are_one_readable_error(tmp_path: Path, tiny_dir: Path):
    import shutil

    folder = tmp_path / "broken"
    shutil.copytree(tiny_dir / TINY_INTERNVL_DIR, folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    spec = ModelSpec(role="vqa", backend="internvl", repo_id="local/broken", local_dir="broken")
    b = InternVLBackend(spec, tmp_path, device="cpu")
    with pytest.raises(PipelineError, match="cannot load local/broken from") as err:
        b.ensure_loaded()
    assert "\n" not in str(err.value) and not b.loaded


def test_bad_image_is_a_pipeline_error(backend: InternVLBackend):
    with pytest.raises(PipelineError, match="uint8"):
        backend.generate([VLMRequest([np.zeros((8, 8, 3), dtype=np.float32)], "x")], max_new_tokens=2)


def test_gpu_out_of_memory_names_a_smaller_profile(backend: InternVLBackend, monkeypatch, images):
    import torch

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(backend._model, "generate", oom)
    with pytest.raises(PipelineError, match="--profile workstation"):
        backend.generate([VLMRequest([images["slice"]], "x")], max_new_tokens=2)


def test_answer_logprobs_select_the_answer_tokens():
    tokens = ["<think>", "looks", " fine", "</think>", "<answer>", "y", "es", "</answer>"]
    lps = [-0.1, -0.2, -0.3, -0.4, -0.5, -1.5, -0.25, -0.05]
    gen = Generation(text="".join(tokens), tokens=tokens, token_logprobs=lps)
    assert parse_think_answer(gen.text).answer == "yes"
    assert answer_logprobs(gen) == [-1.5, -0.25]


def test_choose_device_cpu_and_overrides(monkeypatch):
    choice = device_mod.choose_device("cpu")
    assert (choice.device, choice.dtype, choice.warning) == ("cpu", "float32", device_mod.CPU_WARNING)
    monkeypatch.setenv("CARE_DTYPE", "bfloat16")
    assert device_mod.choose_device("cpu").dtype == "bfloat16"
    with pytest.raises(PipelineError, match="unknown device"):
        device_mod.choose_device("tpu")
    with pytest.raises(PipelineError, match="float16"):
        device_mod.choose_device("cpu", "float16")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(PipelineError, match="no CUDA GPU"):
            device_mod.choose_device("cuda")
