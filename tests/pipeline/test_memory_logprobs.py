"""Chosen-token log-probs without a score stack, and NaN logits refused (tiny InternVL, CPU)."""
from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.backends.logprobs import ChosenTokenLogprobs
from app.pipeline.prompts import evidence_request
from app.pipeline.types import EvidenceType, PipelineError


@pytest.fixture(scope="module")
def backend(tiny_vqa_backend):
    return tiny_vqa_backend


def _requests():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    crop = rng.integers(0, 256, (90, 140, 3), dtype=np.uint8)
    q = "Is there a nodule?"
    return [evidence_request(q, EvidenceType.GLOBAL, [img]),
            evidence_request(q, EvidenceType.CROP, [img, crop], ["left lung"])]


def _spy(monkeypatch, model):
    calls = []
    original = model.generate

    def spy(**kwargs):
        out = original(**kwargs)
        calls.append((kwargs, out))
        return out

    monkeypatch.setattr(model, "generate", spy)
    return calls


def test_logprobs_equal_the_full_score_computation_without_a_score_stack(backend, monkeypatch):
    import torch

    model = backend._model
    calls = _spy(monkeypatch, model)
    gens = backend.generate(_requests(), max_new_tokens=12, min_new_tokens=12)
    (kwargs, out), = calls
    # Memory: no per-step (batch, vocab) stack was asked for nor returned.
    assert kwargs["output_scores"] is False and getattr(out, "scores", None) is None
    (proc,) = [p for p in kwargs["logits_processor"] if isinstance(p, ChosenTokenLogprobs)]
    assert proc._previous is None and all(s.shape == (2,) for s in proc.steps)  # O(steps) floats

    # The reference: the same generation with the full score stack (the old way).
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "logits_processor"}
    ref_kwargs["output_scores"] = True
    monkeypatch.undo()
    with torch.inference_mode():
        ref = model.generate(**ref_kwargs)
        expected = model.compute_transition_scores(ref.sequences, ref.scores, normalize_logits=True)
    assert torch.equal(ref.sequences, out.sequences)
    start = kwargs["input_ids"].shape[1]
    for row, gen in enumerate(gens):
        ids = out.sequences[row, start:].tolist()
        kept = [float(lp) for tid, lp in zip(ids, expected[row].tolist())
                if tid not in backend._stop_ids and tid not in backend._strip_ids]
        assert len(gen.token_logprobs) == len(kept) > 0
        np.testing.assert_allclose(gen.token_logprobs, np.minimum(0.0, kept), atol=1e-5)


def test_nan_logits_stop_with_a_clear_error(backend, monkeypatch):
    import torch

    lm = backend._model.lm_head
    original = lm.forward

    def poisoned(x):
        y = original(x)
        return torch.full_like(y, float("nan"))

    monkeypatch.setattr(lm, "forward", poisoned)
    with pytest.raises(PipelineError, match="NaN or infinite logits.*float32"):
        backend.generate(_requests()[:1], max_new_tokens=4)


def test_processor_unit_keeps_one_step_and_gathers_the_chosen_token():
    import torch

    proc = ChosenTokenLogprobs("float32")
    scores = [torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[3.0, 0.0, 0.0]])]
    chosen = [2, 0]
    ids = torch.tensor([[5]])
    for s, c in zip(scores, chosen):
        assert proc(ids, s) is s  # scores pass through unchanged
        ids = torch.cat([ids, torch.tensor([[c]])], dim=1)
    got = proc.finish(ids)
    want = [torch.log_softmax(s, -1)[0, c].item() for s, c in zip(scores, chosen)]
    np.testing.assert_allclose(got[0].tolist(), want, atol=1e-7)
    with pytest.raises(PipelineError, match="NaN"):
        ChosenTokenLogprobs()(ids, torch.tensor([[0.0, float("inf"), 1.0]]))
    masked = torch.tensor([[0.0, float("-inf"), 1.0]])  # a processor's -inf mask is legitimate
    assert ChosenTokenLogprobs()(ids, masked) is masked


# --------------------------------------------------------------------------- the dtype rule
@pytest.mark.parametrize("capability, fp16_safe, want", [
    ((9, 0), False, "bfloat16"),  # Hopper
    ((8, 0), False, "bfloat16"),  # Ampere A100
    ((8, 6), True, "bfloat16"),
    ((7, 5), False, "float32"),   # Turing T4: Qwen2 never float16
    ((6, 1), False, "float32"),   # Pascal
    ((7, 0), True, "float16"),    # V100, a model that is safe in fp16 (SAM3)
    (None, False, "float32"),
])
def test_dtype_rule_by_fake_capability(capability, fp16_safe, want):
    from app.pipeline.backends.device import dtype_for

    dtype, warning = dtype_for("cuda:0", capability, fp16_safe=fp16_safe)
    assert dtype == want
    assert (warning is not None) == (want == "float32")
    if warning:
        assert "float16 overflows" in warning and "float32" in warning


def test_dtype_rule_cpu_and_mps():
    from app.pipeline.backends.device import dtype_for

    assert dtype_for("cpu", None, fp16_safe=False) == ("float32", None)
    assert dtype_for("mps", None, fp16_safe=False)[0] == "float32"
    assert dtype_for("mps", None, fp16_safe=True)[0] == "float16"


def test_choose_device_uses_the_capability_for_qwen2(monkeypatch):
    """A pre-Ampere GPU (faked) gives the InternVL backend float32 and a warning, never float16."""
    import torch

    from app.pipeline.backends import device as device_mod

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_mod, "_cuda_capability", lambda device: (7, 5))
    monkeypatch.delenv("CARE_DTYPE", raising=False)
    qwen = device_mod.choose_device("cuda", fp16_safe=False)
    assert qwen.dtype == "float32" and "7.5" in qwen.warning
    assert device_mod.choose_device("cuda").dtype == "float16"
    forced = device_mod.choose_device("cuda", "float16", fp16_safe=False)
    assert forced.dtype == "float16" and "overflow" in forced.warning
