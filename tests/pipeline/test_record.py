"""Run record: exact JSON round-trip, arrays kept out of the JSON, PNGs beside run.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

from app.pipeline.record import (
    SCHEMA_VERSION,
    Answer,
    CoordinatorEvent,
    Entity,
    EntityMerge,
    EvidenceItem,
    InputInfo,
    MaskRecord,
    ModelCall,
    Override,
    RunRecord,
    StageTiming,
    Vote,
    VoteResult,
)
from app.pipeline.run_io import read_run, write_run
from app.pipeline.types import EvidenceType, ModelInfo, Stage


def full_record() -> RunRecord:
    rng = np.random.default_rng(0)
    slice_rgb = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    mask = np.zeros((64, 80), bool)
    mask[10:30, 20:45] = True
    r = RunRecord(question="Is there a mass in the left lung?", app_version="0.1.0", profile="tiny",
                  prompt_version="p1", tau=0.7)
    r.input = InputInfo("1.2.3", "1.2.3.4", 7, 48, "CT", {"center": 50.0, "width": 350.0, "name": "m"},
                        "ab" * 32, "int16", (80, 64), "/data/IM0008.dcm")
    r.models["entity"] = ModelInfo("entity", "internvl", "local/tiny", "abc", "f" * 64, "cpu", "float32", "/m")
    r.calls.append(ModelCall(Stage.ENTITIES, "entity", "list entities", "sys", "<|im_start|>...", ["slice.png"],
                             None, "<answer>mass</answer>", ["<answer>", "mass", "</answer>"], [-0.1, -0.2, -0.3], 1.5))
    r.calls.append(ModelCall(Stage.ANSWER, "vqa", "q", None, "t", ["slice.png", "evidence_crop.png"],
                             EvidenceType.CROP, "yes", ["yes"], [-0.01], 2.0))
    r.entities.proposed = [Entity("mass", (1, 2, 30, 40)), Entity("tumour")]
    r.entities.merges = [EntityMerge("mass", ["tumour"], [0.81])]
    r.entities.final = [Entity("mass", (1, 2, 30, 40)), Entity("clinician region 1", (5, 5, 9, 9), "clinician")]
    r.entities.discarded = ["heart"]
    r.entities.format_violations = ["missing </think>"]
    r.masks.append(MaskRecord("mass", "litemedsam", "box", (1, 2, 30, 40), 0.93, True, 0.7, int(mask.sum()),
                              (20, 10, 45, 30), {"mean": 0.4, "min": 0.0, "max": 1.0, "entropy": 0.05},
                              "mask_00.png", 0.12, mask=mask))
    crop = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    r.evidence = [
        EvidenceItem(EvidenceType.CROP, (10, 0, 60, 50), ["slice.png", "evidence_crop.png"], None, ["mass"],
                     images=[slice_rgb, crop]),
        EvidenceItem(EvidenceType.GLOBAL, None, ["slice.png"], images=[slice_rgb]),
    ]
    r.answers = [Answer(EvidenceType.CROP, 1, "because", "Yes", "yes", [], (0, 1), 0.99)]
    r.vote = VoteResult([Vote(EvidenceType.CROP, "Yes", "yes", 0.99)], {"yes": 1}, "yes", "Yes", [], "none", "1 of 1")
    r.final_answer = "Yes"
    r.timings = [StageTiming(Stage.ENTITIES, 1.25, "2026-01-01T00:00:00.000+00:00", 1.2)]
    r.warnings = ["running on CPU"]
    r.overrides = [Override("2026-01-01T00:00:00+00:00", "dr x", "final_answer", "Yes", "No", "see prior")]
    r.coordinator = [CoordinatorEvent("2026-01-01T00:00:00+00:00", "plan", {"evidence": ["crop"], "n": 1})]
    r.status = "completed"
    r.slice_rgb = slice_rgb
    return r


def test_json_round_trip_is_exact():
    r = full_record()
    d = r.to_dict()
    text = json.dumps(d)
    back = RunRecord.from_dict(json.loads(text))
    assert back == r  # dataclass equality over every serialised field
    assert back.to_dict() == d
    assert json.dumps(back.to_dict()) == text
    # Types come back typed, not as JSON lists/strings.
    assert back.entities.final[0].box == (1, 2, 30, 40)
    assert back.answers[0].evidence is EvidenceType.CROP
    assert back.timings[0].stage is Stage.ENTITIES
    assert isinstance(back.models["entity"], ModelInfo)
    assert back.input.image_size == (80, 64)
    assert back.answers[0].answer_token_span == (0, 1)


def test_arrays_are_not_inlined():
    d = full_record().to_dict()
    text = json.dumps(d)
    assert "slice_rgb" not in d and "mask" not in d["masks"][0] and "images" not in d["evidence"][0]
    assert len(text) < 5000
    assert d["schema_version"] == SCHEMA_VERSION
    assert d["overrides"][0]["new"] == "No" and d["coordinator"][0]["kind"] == "plan"


def test_newer_schema_is_refused():
    d = full_record().to_dict()
    d["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ValueError, match="newer"):
        RunRecord.from_dict(d)


def test_run_dir_round_trip(tmp_path):
    r = full_record()
    path = write_run(r, tmp_path / "run")
    assert path.name == "run.json"
    names = sorted(p.name for p in path.parent.iterdir())
    assert names == ["evidence_crop.png", "mask_00.png", "run.json", "slice.png"]
    back = read_run(path.parent)
    assert back == r
    assert np.array_equal(back.slice_rgb, r.slice_rgb)
    assert np.array_equal(back.masks[0].mask, r.masks[0].mask)
    for a, b in zip(back.evidence, r.evidence):
        assert len(a.images) == len(b.images)
        for x, y in zip(a.images, b.images):
            assert np.array_equal(x, y)


def test_vocabulary_fields_decode_as_enums_and_encode_as_the_old_strings():
    from app.pipeline.record import CoordDecision, CoordReGround, CoordReview
    from app.pipeline.vocab import (
        CoordEventKind,
        DecisionSource,
        EntitySource,
        Mode,
        PromptType,
        ReGroundAction,
        ReviewAction,
        Role,
        RunStatus,
        TieBreak,
    )

    r = full_record()
    r.mode = "coord"
    r.coordinator += [
        CoordinatorEvent("t", "reground", reground=CoordReGround(0, 0.9, 0.4, ["A1"], "looser_crop")),
        CoordinatorEvent("t", "review", review=CoordReview(0, action="accept", candidate="A1")),
        CoordinatorEvent("t", "decision", decision=CoordDecision("Yes", "review")),
        CoordinatorEvent("t", "review", review=CoordReview(1)),  # built without an action: ""
    ]
    r.coordinator_decision = CoordDecision()  # no source yet: ""
    d = json.loads(json.dumps(r.to_dict()))
    back = RunRecord.from_dict(d)
    assert json.dumps(back.to_dict()) == json.dumps(d)  # the same bytes as the strings wrote
    assert back.status is RunStatus.COMPLETED and back.mode is Mode.COORD
    assert back.calls[0].role is Role.ENTITY and back.masks[0].prompt_type is PromptType.BOX
    assert [e.source for e in back.entities.final] == [EntitySource.PROPOSED, EntitySource.CLINICIAN]
    assert back.vote.tie_break is TieBreak.NONE
    assert [e.kind for e in back.coordinator] == [CoordEventKind.PLAN, CoordEventKind.REGROUND, CoordEventKind.REVIEW,
                                                   CoordEventKind.DECISION, CoordEventKind.REVIEW]
    assert back.coordinator[1].reground.action is ReGroundAction.LOOSER_CROP
    assert back.coordinator[2].review.action is ReviewAction.ACCEPT
    assert back.coordinator[3].decision.source is DecisionSource.REVIEW
    assert back.coordinator[4].review.action is ReviewAction.UNSET and d["coordinator"][4]["review"]["action"] == ""
    assert back.coordinator_decision.source is DecisionSource.UNSET and back.status == "completed"
