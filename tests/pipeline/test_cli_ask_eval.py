"""`care-viewer ask` and `care-viewer eval` on the shared data with the tiny profile."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from app.cli.eval_cmd import dice, is_correct, label_on_grid
from app.cli.main import main
from app.pipeline.parsing import normalize_answer
from app.study.display import slice_rgb
from app.study.loader import load

TOKENS = ["--max-new-tokens", "24"]


@pytest.fixture(scope="module")
def tumour_box(ct_tumour):
    return ct_tumour.slice_index, ct_tumour.box_arg


@pytest.mark.slow
def test_ask_writes_a_complete_run(tiny_models_dir, ct_dicom_dir, tumour_box, tmp_path, capsys):
    k, box = tumour_box
    out = tmp_path / "run"
    code = main(["ask", str(ct_dicom_dir), "--question", "Is there a lung mass?", "--profile", "tiny",
                 "--slice", str(k), "--box", box, "--window", "lung", "--out", str(out), *TOKENS])
    assert code == 0
    text = capsys.readouterr().out
    assert "masks:" in text and "votes:" in text and "answer:" in text and "clinician region 1" in text
    data = json.loads((out / "run.json").read_text())
    assert data["status"] == "completed" and data["input"]["slice_index"] == k
    assert data["input"]["window"]["name"] == "CT lung"
    assert [e["type"] for e in data["evidence"]] == ["crop", "mask", "global"]
    assert len(data["answers"]) == 3 and data["vote"]["votes"]
    for name in ["slice.png", *(m["png"] for m in data["masks"]), *(f for e in data["evidence"] for f in e["image_files"])]:
        img = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape[:2] == (512, 512) or name.startswith("evidence_crop")


def test_ask_default_slice_is_the_middle(tiny_models_dir, ct_dicom_dir, tmp_path):
    out = tmp_path / "mid"
    assert main(["ask", str(ct_dicom_dir), "-q", "Which organ?", "--profile", "tiny", "--out", str(out), *TOKENS]) == 0
    data = json.loads((out / "run.json").read_text())
    assert data["input"]["slice_index"] == data["input"]["num_slices"] // 2 == 24


def test_ask_exit_3_without_weights(empty_models_dir, ct_dicom_dir, tmp_path, capsys):
    code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--profile", "tiny", "--out", str(tmp_path / "x")])
    assert code == 3
    err = capsys.readouterr().err
    assert "care-viewer models fetch tiny" in err and "models import" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_ask_empty_question_is_a_usage_error_before_anything_loads(empty_models_dir, ct_dicom_dir, tmp_path, capsys):
    assert main(["ask", str(ct_dicom_dir), "-q", "  ", "--profile", "tiny", "--out", str(tmp_path / "x")]) == 1
    assert "--question is empty" in capsys.readouterr().err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("extra, reason", [
    (["--slice", "48"], "out of range"),
    (["--series", "1.2.3.nope"], "no series"),
])
def test_ask_exit_2_bad_slice_or_series(ct_dicom_dir, tmp_path, capsys, extra, reason):
    assert main(["ask", str(ct_dicom_dir), "-q", "q", "--profile", "tiny", *extra]) == 2
    assert reason in capsys.readouterr().err


def test_ask_exit_2_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "scan.nrrd"
    bad.write_bytes(b"not an image at all")
    assert main(["ask", str(bad), "-q", "q", "--profile", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "scan.nrrd" in err and "Traceback" not in err
    assert main(["ask", str(tmp_path / "missing.dcm"), "-q", "q"]) == 2


def test_scoring_rules():
    n = normalize_answer
    assert is_correct("Yes, there is.", "yes", "CLOSED", n)
    assert not is_correct("No", "yes", "CLOSED", n)
    assert not is_correct("left lung base", "left lung", "CLOSED", n)
    assert is_correct("The left lung base", "left lung", "OPEN", n)  # every truth word present
    assert not is_correct("lung", "left lung", "OPEN", n)
    assert not is_correct("", "", "OPEN", n)
    assert dice(np.eye(4, dtype=bool), np.eye(4, dtype=bool)) == 1.0
    assert dice(np.array([1, 1, 0, 0], bool), np.array([1, 0, 0, 0], bool)) == pytest.approx(2 / 3)


@pytest.mark.slow
def test_eval_vqa_reports_accuracy_per_answer_type(tiny_models_dir, ct_dicom_dir, tmp_path, capsys):
    vol = load([ct_dicom_dir]).volumes[0]
    images = tmp_path / "images"
    images.mkdir()
    for k in (12, 24, 36):  # exported slices, as VQA-RAD/SLAKE ship PNG/JPEG images
        cv2.imwrite(str(images / f"ct_{k}.png"), slice_rgb(vol, k)[:, :, ::-1])
    items = [
        {"image": "images/ct_12.png", "question": "Is this a CT scan?", "answer": "yes", "answer_type": "CLOSED"},
        {"image": "images/ct_24.png", "question": "Is there a pneumothorax?", "answer": "no", "answer_type": "CLOSED"},
        {"image": "images/ct_36.png", "question": "Which organ is shown?", "answer": "lung", "answer_type": "OPEN"},
    ]
    dataset = tmp_path / "vqa.json"
    dataset.write_text(json.dumps(items))
    out = tmp_path / "eval"
    assert main(["eval", str(dataset), "--profile", "tiny", "--out", str(out), *TOKENS]) == 0
    table = capsys.readouterr().out
    assert "CLOSED" in table and "OPEN" in table and "OVERALL" in table
    first = json.loads((out / "eval.json").read_text())
    acc = first["accuracy"]
    assert (acc["CLOSED"]["n"], acc["OPEN"]["n"], acc["OVERALL"]["n"]) == (2, 1, 3)
    assert all(it["status"] == "completed" and it["run_id"] for it in first["items"])
    assert (out / "runs" / "00000" / "run.json").is_file()

    # Make the closed items' ground truth what the pipeline answered: scoring must follow.
    for item, result in zip(items, first["items"]):
        if item["answer_type"] == "CLOSED":
            item["answer"] = result["prediction"]
    dataset.write_text(json.dumps(items))
    # The same --out again is refused (an earlier evaluation is never written over) ...
    assert main(["eval", str(dataset), "--profile", "tiny", "--out", str(out), "--limit", "2", *TOKENS]) == 1
    assert "already holds an evaluation" in capsys.readouterr().err
    assert json.loads((out / "eval.json").read_text()) == first
    out2 = tmp_path / "eval2"
    assert main(["eval", str(dataset), "--profile", "tiny", "--out", str(out2), "--limit", "2", *TOKENS]) == 0
    second = json.loads((out2 / "eval.json").read_text())["accuracy"]
    assert second["CLOSED"] == {"n": 2, "correct": 2, "accuracy": 1.0, "errors": 0}
    assert "OPEN" not in second  # --limit 2 keeps the two closed items


def test_eval_seg_dice_on_the_real_tumour(shared_data, tmp_path, capsys):
    ct = shared_data / "ct-chest-lung1"
    dataset = tmp_path / "seg.json"
    dataset.write_text(json.dumps([{"image": str(ct / "lung1_image.nrrd"), "label": str(ct / "lung1_label.nrrd")}]))
    out = tmp_path / "seg"
    assert main(["eval", str(dataset), "--seg", "--profile", "tiny", "--out", str(out)]) == 0
    result = json.loads((out / "eval.json").read_text())
    case = result["items"][0]
    assert case["slice_index"] == 33 and case["label_area_px"] == 347
    # The NRRD's HU values get it the CT default window (mediastinum), as a DICOM CT without a VOI
    # window: LiteMedSAM's Dice there is 0.754 (0.853 in the DICOM series' own lung window).
    assert case["dice"] >= 0.7 and result["mean_dice"] == case["dice"]
    assert "mean Dice" in capsys.readouterr().out


def test_label_maps_through_physical_coordinates(shared_data):
    """The brain NRRD label is left-handed; the DICOM series has the slice axis reversed."""
    mr = shared_data / "mr-brain-brain1"
    series = load([mr / "dicom"]).volumes[0]
    label = load([mr / "brain1_label.nrrd"]).volumes[0]
    raw = sitk.GetArrayFromImage(sitk.ReadImage(str(mr / "brain1_label.nrrd"))) > 0
    mapped = label_on_grid(label, series)
    assert mapped.shape == series.array.shape and mapped.sum() == raw.sum()
    per_slice = mapped.reshape(mapped.shape[0], -1).sum(axis=1)
    raw_per_slice = raw.reshape(raw.shape[0], -1).sum(axis=1)
    assert np.array_equal(per_slice, raw_per_slice[::-1])  # same anatomy, slice order reversed
