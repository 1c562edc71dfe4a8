"""CARE-Flow's shared prefix: the system prompt, the slice and the question are prefilled once for
the three evidence passes, and the answers are those of prefilling every pass on its own.

Real InternVL code on the tiny checkpoint, greedy; the unshared path (``share_prefix = False``)
is the reference, so a wrong position, a missing image or a misplaced cache row changes tokens."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.pipeline import prompts
from app.pipeline.backends import shared_prefix
from app.pipeline.remote.backend import request_messages
from app.pipeline.run_io import write_run
from app.pipeline.types import EvidenceType, VLMRequest

CROP, MASK, GLOBAL = EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL
Q = "Is there a nodule in the left lung?"
TOKENS = 24


@pytest.fixture(scope="module")
def backend(tiny_vqa_backend):
    tiny_vqa_backend.share_prefix = True
    yield tiny_vqa_backend
    tiny_vqa_backend.share_prefix = True


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    slice_ = rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)
    mask = np.zeros((512, 512, 3), dtype=np.uint8)
    mask[200:300, 150:260] = 255
    crop = np.ascontiguousarray(slice_[150:330, 90:410])  # wide: 2 tiles + thumbnail
    return {"slice": slice_, "crop": crop, "mask": mask}


def flow_requests(images, question=Q, slice_=None):
    s = images["slice"] if slice_ is None else slice_
    return [prompts.evidence_request(question, CROP, [s, images["crop"]], ["left lung"]),
            prompts.evidence_request(question, MASK, [s, images["mask"]], ["left lung"]),
            prompts.evidence_request(question, GLOBAL, [s], ["left lung"])]


def both_paths(backend, requests, tokens=TOKENS, **kw):
    out = {}
    for share in (False, True):
        backend.share_prefix = share
        out[share] = backend.generate(requests, max_new_tokens=tokens, **kw)
    backend.share_prefix = True
    return out[False], out[True]


def vision_tiles(backend, monkeypatch) -> list[int]:
    """The tiles each vision-tower call encodes (a spy on the real tower)."""
    tower = backend._model.model.vision_tower
    seen: list[int] = []
    original = tower.forward

    def spy(pixel_values, *a, **k):
        seen.append(int(pixel_values.shape[0]))
        return original(pixel_values, *a, **k)

    monkeypatch.setattr(tower, "forward", spy)
    return seen


def test_shared_prefix_answers_are_token_identical_to_the_unshared_path(backend, images):
    requests = flow_requests(images)
    plain, shared = both_paths(backend, requests, min_new_tokens=TOKENS)  # full length: more steps compared
    for a, b in zip(plain, shared):
        assert b.tokens == a.tokens and b.text == a.text and len(b.token_logprobs) == TOKENS
        np.testing.assert_allclose(b.token_logprobs, a.token_logprobs, rtol=0, atol=1e-4)
        assert b.prompt_text == a.prompt_text  # the same prompt, recorded the same way
    assert [g.shared_prefix_tokens for g in plain] == [0, 0, 0]
    n = shared[0].shared_prefix_tokens
    assert n and [g.shared_prefix_tokens for g in shared] == [n, n, n]
    # The prefix is the system prompt, the whole slice and the question, and nothing after it.
    tok = backend._processor.tokenizer
    text = backend.render_prompts(requests[:1])[0]
    ids = backend._processor(text=[text], images=[requests[0].images[0], requests[0].images[1]],
                             return_tensors="pt")["input_ids"][0].tolist()
    prefix = tok.decode(ids[:n], skip_special_tokens=False)
    assert prefix.startswith("<|im_start|>system\n" + prompts.SYSTEM_PROMPT)
    assert prefix.count("<img>") == prefix.count("</img>") == 1 and "Image-2" not in prefix
    assert prefix.rstrip("\n").endswith(Q)


def test_sampled_answers_stay_token_identical_under_the_same_seed(backend, images):
    import torch

    requests = flow_requests(images)
    runs = []
    for share in (False, True):
        backend.share_prefix = share
        torch.manual_seed(5)
        runs.append(backend.generate(requests, max_new_tokens=12, do_sample=True, temperature=1.0))
    backend.share_prefix = True
    assert [g.tokens for g in runs[0]] == [g.tokens for g in runs[1]]
    for a, b in zip(*runs):  # under the model's untempered distribution, as unshared
        np.testing.assert_allclose(b.token_logprobs, a.token_logprobs, rtol=0, atol=1e-4)


def test_the_slice_is_encoded_once_for_the_three_passes(backend, images, monkeypatch):
    requests = flow_requests(images)
    seen = vision_tiles(backend, monkeypatch)
    backend.share_prefix = False
    backend.generate(requests, max_new_tokens=2)
    unshared = list(seen)
    seen.clear()
    backend.share_prefix = True
    backend.generate(requests, max_new_tokens=2)
    slice_tiles = backend._processor(text=["<IMG_CONTEXT>"], images=[images["slice"]],
                                     return_tensors="pt")["pixel_values"].shape[0]
    assert sum(unshared) - sum(seen) == 2 * slice_tiles  # two re-encodings of the slice saved
    assert len(seen) == 1  # the slice and both evidence images in one vision-tower call


def test_different_slices_share_only_the_text_before_them(backend, images):
    """Equal tokens but different pixels (two slices' image tokens are identical): the prefix
    must stop before the image, or the second request would be answered about the first slice."""
    other = np.ascontiguousarray(images["slice"][::-1])
    requests = [flow_requests(images)[2], flow_requests(images, slice_=other)[2]]
    plain, shared = both_paths(backend, requests, min_new_tokens=TOKENS)
    assert [g.tokens for g in shared] == [g.tokens for g in plain]
    text = backend.render_prompts(requests[:1])[0]
    ids = backend._processor(text=[text], images=[images["slice"]], return_tensors="pt")["input_ids"][0].tolist()
    first_image = ids.index(backend._processor.image_token_id)
    assert 0 < shared[0].shared_prefix_tokens <= first_image


def test_plan_cuts_at_the_first_image_whose_pixels_differ():
    import torch

    img, n = 9, 2  # image-context id, tokens per tile
    rows = [torch.tensor([1, 2, img, img, 3, img, img, 4, 5]), torch.tensor([1, 2, img, img, 3, img, img, 4, 6])]
    same = torch.zeros((4, 1))
    plan = shared_prefix.plan_prefix(rows, same, img, n)
    assert plan.length == 8 and plan.prefix_images == 2
    differ = torch.tensor([[0.0], [5.0], [1.0], [1.0]])  # rows' first images differ, second equal
    plan = shared_prefix.plan_prefix(rows, differ, img, n)
    assert plan.length == 2 and plan.prefix_images == 0
    assert shared_prefix.plan_prefix(rows[:1], same, img, n) is None  # one request: nothing to share
    assert shared_prefix.plan_prefix([torch.tensor([7, 1]), torch.tensor([8, 1])], same, img, n) is None


def test_the_lead_sits_between_the_slice_and_the_evidence_image(backend, images):
    crop, glob = flow_requests(images)[0], flow_requests(images)[2]
    lead = prompts.vqa_lead(Q)
    two, one = backend.render_prompts([crop, glob])
    assert f"<|im_start|>user\nImage-1: <IMG_CONTEXT>\n{lead}Image-2: <IMG_CONTEXT>\n{crop.prompt}<|im_end|>" in two
    assert f"<|im_start|>user\nImage-1: <IMG_CONTEXT>\n{lead}{glob.prompt}<|im_end|>" in one
    (text_only,) = backend.render_prompts([VLMRequest([], "the rest", lead="the lead, ")])
    assert "<|im_start|>user\nthe lead, the rest<|im_end|>" in text_only  # no image: the lead is kept
    # The remote wire has the same order (a serving engine's prefix cache sees the same prefix).
    parts = request_messages(crop)[-1]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text", "image_url", "text"]
    assert parts[1]["text"] == lead and parts[3]["text"] == crop.prompt


@pytest.mark.slow
def test_run_json_records_which_prefill_ran(tiny_pipeline_factory, ct_volume, ct_tumour, tmp_path):
    from app.pipeline.backends.internvl import InternVLBackend

    pipeline = tiny_pipeline_factory(16, with_text_segmenter=False)
    vqa = pipeline.backend("vqa")
    assert isinstance(vqa, InternVLBackend)
    records = {}
    try:
        for share in (True, False):
            vqa.share_prefix = share
            record = pipeline.run(ct_volume, ct_tumour.slice_index, "Is there a mass in the right lung?",
                                  boxes=[ct_tumour.box])
            assert record.status == "completed", record.errors
            assert not any(e.fallback for e in record.evidence)
            write_run(record, tmp_path / str(share))
            records[share] = json.loads((tmp_path / str(share) / "run.json").read_text())
    finally:
        vqa.share_prefix = True
    for share, data in records.items():
        calls = [c for c in data["calls"] if c["role"] == "vqa"]
        assert len(calls) == 3
        prefix = {c["shared_prefix_tokens"] for c in calls}
        assert (prefix == {0}) if not share else (len(prefix) == 1 and prefix.pop() > 0)
        entity = [c for c in data["calls"] if c["role"] == "entity"]
        assert all(c["shared_prefix_tokens"] == 0 for c in entity)  # one request: prefilled alone
    # Same answers both ways (greedy).
    assert [c["tokens"] for c in records[True]["calls"]] == [c["tokens"] for c in records[False]["calls"]]
