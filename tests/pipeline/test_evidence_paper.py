"""Evidence as in the paper: a per-entity crop square in millimetres, the all-ones global mask
(a profile option), and InternVL's "Image-N: " labels in the tokenised two-image prompt."""
from __future__ import annotations

import dataclasses
import cv2
import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from app.pipeline import prompts
from app.pipeline.backends.internvl import InternVLBackend
from app.pipeline.engine import CarePipeline
from app.pipeline.evidence import build_evidence, crop_rect, mask_bbox
from app.pipeline.profile_options import option_problems
from app.pipeline.profiles import Profile, load_profile
from app.pipeline.record import MaskRecord
from app.pipeline.run_io import read_run, write_run
from app.pipeline.types import EvidenceType, VLMRequest
from app.pipeline.vocab import BackendKind, CropChoice, CropEntity, CropUnit, GlobalEvidence, Role
from app.study.display import CT_PRESETS, apply_window
from app.study.volume import Volume

CROP, MASK, GLOBAL = EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL
QUESTION = "Is there a mass in the right lung?"


def rgb(pixels, window):
    return np.repeat(apply_window(pixels, window)[:, :, None], 3, axis=2)


def mask_rec(mask, name, conf):
    return MaskRecord(name, "litemedsam", "box", accepted=True, confidence=conf, mask=mask)


@pytest.fixture(scope="module")
def ct_slice(shared_data, ct_tumour):
    """(HU slice, tumour mask, left-lung mask) on the labelled tumour slice of the real CT."""
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_image.nrrd")))
    pixels = image[ct_tumour.slice_index].astype(np.int16)
    tumour = ct_tumour.mask
    # A second real structure far from the tumour: the air-filled lung on the other half.
    cx = (mask_bbox(tumour)[0] + mask_bbox(tumour)[2]) // 2
    other = np.zeros_like(tumour)
    if cx < pixels.shape[1] // 2:
        other[:, pixels.shape[1] // 2 + 20:] = True
    else:
        other[:, : pixels.shape[1] // 2 - 20] = True
    # The largest air region not touching the border (outside-body air does): the lung.
    n, labels, stats, _ = cv2.connectedComponentsWithStats((other & (pixels < -500)).astype(np.uint8), connectivity=4)
    h, w = pixels.shape
    inner = [i for i in range(1, n) if stats[i, 0] > 0 and stats[i, 1] > 0
             and stats[i, 0] + stats[i, 2] < w and stats[i, 1] + stats[i, 3] < h]
    lung = labels == max(inner, key=lambda i: stats[i, 4])
    assert lung.sum() > 2000 and not (lung & tumour).any()
    return pixels, tumour, lung


def _contains(rect, bbox) -> bool:
    return rect[0] <= bbox[0] and rect[1] <= bbox[1] and rect[2] >= bbox[2] and rect[3] >= bbox[3]


def test_two_entities_crop_around_the_most_confident_only(ct_slice):
    pixels, tumour, lung = ct_slice
    win = CT_PRESETS["lung"]
    image = rgb(pixels, win)
    masks = [mask_rec(lung, "left lung", 0.80), mask_rec(tumour, "tumour", 0.93)]
    item = build_evidence(CROP, pixels, win, image, masks)
    assert item.crop_entity == "tumour" and item.entities == ["tumour"]
    assert item.crop_choice is CropChoice.MOST_CONFIDENT and item.crop_confidence == pytest.approx(0.93)
    assert _contains(item.crop_rect, mask_bbox(tumour)) and not _contains(item.crop_rect, mask_bbox(lung))
    # Tight around the tumour (its bbox side + the margin), nowhere near the union of both masks.
    tb, union = mask_bbox(tumour), mask_bbox(tumour | lung)
    side = item.crop_rect[2] - item.crop_rect[0]
    assert side <= 1.5 * max(tb[2] - tb[0], tb[3] - tb[1]) + 2 < 0.5 * (union[2] - union[0])
    # The other entity wins when it is the more confident: the crop follows confidence, not order.
    swapped = build_evidence(CROP, pixels, win, image, [mask_rec(lung, "left lung", 0.95), masks[1]])
    assert swapped.crop_entity == "left lung" and _contains(swapped.crop_rect, mask_bbox(lung))
    # The mask evidence is still the union of every accepted mask.
    m = build_evidence(MASK, pixels, win, image, masks)
    assert m.entities == ["left lung", "tumour"] and (m.images[1][..., 0] == 255).sum() == (tumour | lung).sum()


def test_a_question_naming_an_entity_picks_it(ct_slice):
    pixels, tumour, lung = ct_slice
    win = CT_PRESETS["lung"]
    image = rgb(pixels, win)
    masks = [mask_rec(tumour, "tumour", 0.93), mask_rec(lung, "left lung", 0.80)]
    q = "Is the Left  lung clear of consolidation?"
    named = build_evidence(CROP, pixels, win, image, masks, crop_entity=CropEntity.NAMED_OR_MOST_CONFIDENT,
                           question=q)
    assert named.crop_entity == "left lung" and named.crop_choice is CropChoice.NAMED
    assert _contains(named.crop_rect, mask_bbox(lung)) and not _contains(named.crop_rect, mask_bbox(tumour))
    # The default rule ignores the question; a question naming nothing falls back to confidence.
    assert build_evidence(CROP, pixels, win, image, masks, question=q).crop_entity == "tumour"
    other = build_evidence(CROP, pixels, win, image, masks, crop_entity=CropEntity.NAMED_OR_MOST_CONFIDENT,
                           question="Is the leftmost lungworm visible?")  # words, not substrings
    assert other.crop_entity == "tumour" and other.crop_choice is CropChoice.MOST_CONFIDENT
    # The prompt names the cropped entity only.
    req = prompts.vqa_request(q, named)
    assert "containing left lung," in req.prompt and "tumour" not in req.prompt


def test_crop_rect_is_square_in_millimetres():
    bbox = (100, 100, 120, 120)  # 20 x 20 px = 10 mm wide x 20 mm tall at 0.5 x 1.0 mm
    x0, y0, x1, y1 = crop_rect(bbox, (400, 400), margin=0.25, spacing=(0.5, 1.0))
    assert (x1 - x0, y1 - y0) == (60, 30)  # 30 mm both ways: twice as many columns as rows
    assert x0 <= 100 and x1 >= 120 and y0 <= 100 and y1 >= 120
    assert crop_rect(bbox, (400, 400), margin=0.5) == (90, 90, 130, 130)  # uncalibrated: square in pixels


@pytest.mark.slow
def test_crop_square_in_mm_on_an_anisotropic_volume(ct_volume, ct_tumour, tmp_path):
    """A real CT slice stack given 0.5 mm columns and 1.0 mm rows: the run's crop is twice as
    wide as tall in pixels, square in mm, and run.json says so; uncalibrated: square in pixels."""
    arr = ct_volume.array[ct_tumour.slice_index - 1: ct_tumour.slice_index + 2].copy()
    vol = Volume(arr, (0.5, 1.0, 3.0), (0.0, 0.0, 0.0), np.eye(3), "CT", window=ct_volume.window)
    pipe = _pipeline(tau=0.0)
    record = pipe.run(vol, 1, QUESTION, boxes=[ct_tumour.box])
    assert record.status == "completed", record.errors
    assert record.input.pixel_spacing == (0.5, 1.0)
    crop = next(e for e in record.evidence if e.type == CROP)
    x0, y0, x1, y1 = crop.crop_rect
    assert crop.crop_square_in is CropUnit.MM and crop.crop_margin == 0.25
    assert crop.crop_mm == pytest.approx(((x1 - x0) * 0.5, (y1 - y0) * 1.0))
    assert abs((x1 - x0) - 2 * (y1 - y0)) <= 1 and crop.crop_mm[0] == pytest.approx(crop.crop_mm[1], abs=1.0)
    accepted = [m for m in record.masks if m.accepted]
    assert crop.crop_entity == max(accepted, key=lambda m: m.confidence).entity
    write_run(record, tmp_path / "run")
    back = read_run(tmp_path / "run", load_images=False)
    saved = next(e for e in back.evidence if e.type == CROP)
    assert saved.crop_square_in is CropUnit.MM and saved.crop_mm == pytest.approx(crop.crop_mm)
    assert saved.crop_entity == crop.crop_entity and saved.crop_choice is CropChoice.MOST_CONFIDENT

    flat = dataclasses.replace(vol, spacing_source="none")
    rec = pipe.run(flat, 1, QUESTION, boxes=[ct_tumour.box])
    c = next(e for e in rec.evidence if e.type == CROP)
    assert rec.input.pixel_spacing is None and c.crop_square_in is CropUnit.PIXELS and c.crop_mm is None
    assert c.crop_rect[2] - c.crop_rect[0] == c.crop_rect[3] - c.crop_rect[1]


@pytest.mark.slow
def test_two_accepted_entities_in_a_run_crop_the_most_confident(ct_volume, ct_tumour):
    x0, y0, x1, y1 = ct_tumour.box
    w = ct_volume.array.shape[2]
    mirrored = (w - x1, y0, w - x0, y1)  # the same region of the other lung
    record = _pipeline(tau=0.0).run(ct_volume, ct_tumour.slice_index, QUESTION, boxes=[ct_tumour.box, mirrored])
    assert record.status == "completed", record.errors
    accepted = [m for m in record.masks if m.accepted and m.bbox]
    assert len({m.entity for m in accepted}) == 2
    best = max(accepted, key=lambda m: m.confidence)
    other = next(m for m in accepted if m.entity != best.entity)
    crop = next(e for e in record.evidence if e.type == CROP)
    assert crop.crop_entity == best.entity and crop.entities == [best.entity]
    assert crop.crop_confidence == pytest.approx(best.confidence)
    assert _contains(crop.crop_rect, best.bbox) and not _contains(crop.crop_rect, other.bbox)
    mask = next(e for e in record.evidence if e.type == MASK)
    assert sorted(mask.entities) == sorted(m.entity for m in accepted)


@pytest.fixture()
def vqa_requests(monkeypatch):
    calls: list[list] = []
    original = InternVLBackend.generate

    def counting(self, requests, *args, **kwargs):
        vqa = [r for r in requests if r.lead.startswith("Image-1 is a medical image.\n")]
        if vqa:
            calls.append(vqa)
        return original(self, requests, *args, **kwargs)

    monkeypatch.setattr(InternVLBackend, "generate", counting)
    return calls


@pytest.mark.slow
def test_ones_mask_global_evidence_is_a_second_all_white_image(ct_volume, ct_tumour, vqa_requests, tmp_path):
    k = ct_tumour.slice_index
    record = _pipeline(tau=0.0, global_evidence="ones-mask").run(ct_volume, k, QUESTION, boxes=[ct_tumour.box])
    assert record.status == "completed", record.errors
    g = next(e for e in record.evidence if e.type == GLOBAL)
    assert g.ones_mask and len(g.images) == 2 and g.image_files == ["slice.png", "evidence_global.png"]
    assert g.images[1].shape == g.images[0].shape and (g.images[1] == 255).all()
    (batch,) = vqa_requests
    (greq,) = [r for r in batch if prompts.ONES_MASK_SENTENCE in r.prompt]
    assert len(greq.images) == 2 and (greq.images[1] == 255).all()
    write_run(record, tmp_path / "run")
    assert (np.asarray(Image.open(tmp_path / "run" / "evidence_global.png")) == 255).all()
    # The default ("image") keeps global evidence the slice alone.
    plain = _pipeline(tau=0.0).run(ct_volume, k, QUESTION, boxes=[ct_tumour.box])
    pg = next(e for e in plain.evidence if e.type == GLOBAL)
    assert not pg.ones_mask and len(pg.images) == 1


@pytest.mark.slow
def test_ones_mask_fallback_is_the_global_request_asked_once(ct_volume, ct_tumour, vqa_requests):
    """No mask passes tau: crop and mask fall back to exactly the global evidence (the slice and
    the all-ones mask), so the three requests are one and it is asked once."""
    record = _pipeline(tau=1.0, global_evidence="ones-mask").run(ct_volume, ct_tumour.slice_index, QUESTION,
                                                                 boxes=[ct_tumour.box])
    assert record.status == "completed", record.errors
    assert [e.fallback is not None for e in record.evidence] == [True, True, False]
    assert all(e.ones_mask and len(e.images) == 2 for e in record.evidence)
    assert len(vqa_requests) == 1 and len(vqa_requests[0]) == 1
    req = vqa_requests[0][0]
    assert req.prompt == prompts.vqa_prompt(GLOBAL, ones_mask=True) and len(req.images) == 2
    assert req.lead == prompts.vqa_lead(QUESTION)
    assert [a.same_input_as for a in record.answers] == [2, 2, None] and record.vote.independent_passes == 1


def test_evidence_options_are_checked_when_the_profile_loads():
    ok = option_problems(BackendKind.INTERNVL, Role.VQA, {"global_evidence": "ones-mask",
                                                           "crop_entity": "named-or-most-confident"})
    assert ok == []
    bad = option_problems(BackendKind.INTERNVL, Role.VQA, {"global_evidence": "all-ones"})
    assert bad == ["option 'global_evidence' must be one of 'image', 'ones-mask', not 'all-ones'"]
    assert option_problems(BackendKind.INTERNVL, Role.ENTITY, {"crop_entity": "most-confident"})  # vqa only
    paper = load_profile("care-paper").get(Role.VQA).options
    assert paper["global_evidence"] == GlobalEvidence.ONES_MASK.value


@pytest.fixture(scope="module")
def backend(tiny_vqa_backend):
    return tiny_vqa_backend


def test_tokenised_two_image_prompt_labels_each_image(backend, ct_volume, ct_tumour):
    """The real InternVL3-hf template with the tiny tokenizer: "Image-1: " and "Image-2: " stand
    right before each image block, as InternVL was trained ('Image-1: <image>\\nImage-2: <image>')."""
    from app.study.display import slice_rgb

    img = slice_rgb(ct_volume, ct_tumour.slice_index)[::4, ::4].copy()
    two = VLMRequest(images=[img, img[::-1].copy()], prompt="Image-1 is a medical image.\nQuestion: x",
                     system=prompts.SYSTEM_PROMPT)
    text = backend.render_prompts([two])[0]
    assert "<|im_start|>user\nImage-1: <IMG_CONTEXT>\nImage-2: <IMG_CONTEXT>\nImage-1 is a medical image." in text
    proc = backend._processor
    ids = proc(text=[text], images=[Image.fromarray(i) for i in two.images], return_tensors="pt")["input_ids"][0]
    decoded = proc.tokenizer.decode(ids.tolist(), skip_special_tokens=False)
    first, second = decoded.index("<img>"), decoded.index("<img>", decoded.index("</img>"))
    assert decoded[:first].endswith("Image-1: ") and decoded[decoded.index("</img>"):second].endswith("Image-2: ")
    assert decoded.count("<img>") == 2
    # One image: InternVL's single-image form, no label.
    one = backend.render_prompts([VLMRequest(images=[img], prompt="Q", system=None)])[0]
    assert "Image-1: " not in one and "<|im_start|>user\n<IMG_CONTEXT>\nQ" in one


def _pipeline(tau: float, **vqa_options) -> CarePipeline:
    """The tiny profile without its text segmenter (LiteMedSAM segments the boxes), with
    ``vqa_options`` added to its VQA role."""
    from tests.fixtures.tiny import link_tiny_models, session_models_dir

    link_tiny_models(session_models_dir())
    p = load_profile("tiny")
    models = {r: s for r, s in p.models.items() if r != "segmenter"}
    vqa = models["vqa"]
    models["vqa"] = dataclasses.replace(vqa, options={**vqa.options, **vqa_options})
    return CarePipeline(Profile("tiny", p.description, 0, models, p.weights), tau=tau, max_new_tokens=8,
                        entity_max_new_tokens=8)
