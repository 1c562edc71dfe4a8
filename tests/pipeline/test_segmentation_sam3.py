"""SAM3 text route on the tiny random-initialised Sam3Model (real transformers code paths)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.pipeline.profiles import load_profile
from app.pipeline.segmentation import EntityPrompt, build_segmenter, release_segmenters, segment_entities
from app.pipeline.segmentation.sam3 import Sam3Segmenter
from app.pipeline.types import SegPrompt, WeightsMissingError

NAMES = ["left lung", "right kidney", "liver", "tumour", "the heart"]


@pytest.fixture(scope="module")
def sam3_models_dir(tmp_path_factory) -> Path:
    from tests.tiny_sam3 import ensure_tiny_sam3

    out = tmp_path_factory.mktemp("sam3-models")
    ensure_tiny_sam3(out)
    return out


@pytest.fixture(scope="module")
def sam3(sam3_models_dir) -> Sam3Segmenter:
    return Sam3Segmenter(sam3_models_dir / "tiny-sam3", repo_id="local/tiny-sam3")


@pytest.fixture(scope="module")
def slice_image(ct_volume) -> np.ndarray:
    from app.study.display import slice_rgb

    return slice_rgb(ct_volume, 24)


def test_tiny_checkpoint_mirrors_facebook_sam3(sam3):
    from transformers import CLIPTokenizer, Sam3ImageProcessor, Sam3Model

    assert type(sam3.model) is Sam3Model
    ip = sam3.processor.image_processor
    assert isinstance(ip, Sam3ImageProcessor)
    assert ip.size["height"] == ip.size["width"] == 1008 and sam3.model.config.image_size == 1008
    assert list(ip.image_mean) == [0.5] * 3 and list(ip.image_std) == [0.5] * 3
    tok = sam3.processor.tokenizer
    assert isinstance(tok, CLIPTokenizer)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|startoftext|>", "<|endoftext|>", "<|endoftext|>")
    ids = sam3.processor(text=["the left lung"], return_tensors="pt")["input_ids"][0].tolist()
    assert len(ids) == 32 and ids[0] == tok.bos_token_id
    assert ids[1:5] == tok.convert_tokens_to_ids(["the</w>", "left</w>", "lung</w>", "<|endoftext|>"])


def test_text_prompts_give_image_sized_probability_maps(sam3, slice_image):
    sam3.set_image(slice_image, "ct|24")
    maps = sam3.predict([SegPrompt(text=n) for n in NAMES])
    assert len(maps) == len(NAMES)
    for m in maps:
        assert m.shape == slice_image.shape[:2] and m.dtype == np.float32
        assert np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0
    assert not np.allclose(maps[0], maps[2])  # the prompt reaches the mask head


def test_one_vision_encoder_call_for_several_prompts(sam3, slice_image):
    calls = []
    handle = sam3.model.vision_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        sam3.set_image(slice_image, "vision-count")
        sam3.predict([SegPrompt(text=n) for n in NAMES])
        sam3.set_image(slice_image, "vision-count")
        sam3.predict([SegPrompt(text="liver")])
    finally:
        handle.remove()
    assert len(calls) == 1


def test_reused_features_match_a_full_forward(sam3, slice_image):
    """Batched prompts on cached, expanded features == the plain one-prompt model call."""
    import torch

    sam3.set_image(slice_image, "ct|24")
    batched = sam3.predict([SegPrompt(text=n) for n in NAMES])
    h, w = slice_image.shape[:2]
    inputs = sam3.processor(images=slice_image, text=[NAMES[3]], return_tensors="pt")
    with torch.inference_mode():
        out = sam3.model(pixel_values=inputs["pixel_values"], input_ids=inputs["input_ids"],
                         attention_mask=inputs["attention_mask"])
    ref = sam3.processor.post_process_semantic_segmentation(out, target_sizes=[(h, w)],
                                                            return_segmentation_scores=True)
    np.testing.assert_allclose(batched[3], ref[0]["segmentation_scores"][0].numpy(), atol=1e-4)


def test_segment_entities_text_route(sam3, slice_image):
    res = segment_entities(sam3, slice_image, "ct|24", [EntityPrompt(n) for n in NAMES[:2]], tau=0.7)
    assert [r.entity for r in res] == NAMES[:2]
    for r in res:
        assert r.prompt_type == "text" and r.backend == "sam3" and r.box is None
        assert r.mask.shape == slice_image.shape[:2] and 0.0 <= r.confidence <= 1.0
        assert r.accepted == (r.confidence >= 0.7)
        json.dumps(r.to_dict())


def test_factory_builds_once_per_spec(sam3_models_dir, monkeypatch):
    monkeypatch.setenv("CARE_MODELS_DIR", str(sam3_models_dir))
    release_segmenters()
    spec = load_profile("tiny").get("segmenter")
    a = build_segmenter(spec)
    assert isinstance(a, Sam3Segmenter) and build_segmenter(spec) is a
    assert a.info.backend == "sam3" and a.info.repo_id == "local/tiny-sam3" and len(a.info.weights_sha256) == 64
    release_segmenters()


def test_missing_weights_say_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path))
    release_segmenters()
    with pytest.raises(WeightsMissingError, match="models fetch"):
        build_segmenter(load_profile("tiny").get("segmenter"))


def test_cli_text_route(sam3_models_dir, ct_dicom_dir, tmp_path, monkeypatch, capsys):
    import cv2

    from app.cli.main import main

    monkeypatch.setenv("CARE_MODELS_DIR", str(sam3_models_dir))
    out = tmp_path / "liver.png"
    rc = main(["segment", str(ct_dicom_dir), "--slice", "24", "--text", "liver", "--profile", "tiny",
               "--out", str(out), "--json"])
    assert rc == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["backend"] == "sam3" and payload["prompt_type"] == "text" and payload["entity"] == "liver"
    png = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert png.shape == (512, 512) and int((png > 0).sum()) == payload["area_px"]
    release_segmenters()


def test_cli_text_without_weights_exits_3(tmp_path, ct_dicom_dir, monkeypatch, capsys):
    from app.cli.main import main

    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path))
    release_segmenters()
    rc = main(["segment", str(ct_dicom_dir), "--slice", "3", "--text", "liver", "--profile", "tiny",
               "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert rc == 3 and "models fetch" in err and "Traceback" not in err
    assert not (tmp_path / "m.png").exists()
    # A profile without any text segmenter says which profiles have one.
    rc = main(["segment", str(ct_dicom_dir), "--slice", "3", "--text", "liver", "--profile", "workstation",
               "--out", str(tmp_path / "m.png")])
    assert rc == 3 and "no text segmenter" in capsys.readouterr().err


def test_long_entity_names_are_truncated_not_fatal(sam3, slice_image):
    # Sam3Processor pads to 32 tokens without truncating; a long name must not break the batch.
    sam3.set_image(slice_image, "ct|24")
    long_name = "irregular spiculated soft tissue mass " * 12
    maps = sam3.predict([SegPrompt(text=long_name), SegPrompt(text="liver")])
    assert len(maps) == 2 and all(m.shape == slice_image.shape[:2] for m in maps)
