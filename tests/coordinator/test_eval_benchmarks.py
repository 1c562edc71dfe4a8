"""`care-viewer eval --format …` end to end through a department server (a loopback
OpenAI-compatible server, real sockets; LiteMedSAM local): items answered concurrently, none
lost or duplicated, an interrupted evaluation resumed, multiple choice asked with its options."""
from __future__ import annotations

import json

import cv2
import pytest

from app.cli.main import main
from app.study.display import slice_rgb

from coord_support import write_manifest

pytestmark = pytest.mark.slow

ANSWERS = {  # question -> what the server's VQA passes answer
    "Is there evidence of a mass?": "yes",
    "How many lesions are there?": "two",
    "Where is the mass?": "left lung",
}
RAD = [
    {"qid": 11, "image_name": "ct_20.png", "question": "Is there evidence of a mass?", "answer": "Yes",
     "answer_type": "CLOSED", "question_type": "PRES", "image_organ": "CHEST"},
    {"qid": 12, "image_name": "ct_30.png", "question": "How many lesions are there?", "answer": 2,
     "answer_type": "OPEN", "question_type": "COUNT", "image_organ": "CHEST"},
    {"qid": 13, "image_name": "ct_40.png", "question": "Where is the mass?", "answer": "right upper lobe",
     "answer_type": "OPEN", "question_type": "POS", "image_organ": "CHEST"},
]


def _responder(prompt, n_images, req):
    if "Do not answer the question" in prompt:  # entity proposal: one entity, no box
        return "<think>t</think><answer>lung</answer>"
    answer = next((a for q, a in ANSWERS.items() if q in prompt), "B")
    return f"<think>I look.</think><answer>{answer}</answer>"


@pytest.fixture()
def bench(tmp_path, monkeypatch, experts, ct_volume):
    monkeypatch.setenv("CARE_MANIFEST", str(write_manifest(tmp_path / "profiles.toml", experts)))
    experts.set_responder(_responder)
    images = tmp_path / "VQA_RAD Image Folder"
    images.mkdir()
    for k in (20, 30, 40):  # exported slices, as VQA-RAD ships images
        cv2.imwrite(str(images / f"ct_{k}.png"), slice_rgb(ct_volume, k)[:, :, ::-1])
    path = tmp_path / "VQA_RAD Dataset Public.json"
    path.write_text(json.dumps(RAD), encoding="utf-8")
    return path, images


def _eval(path, images, out, *extra):
    return main(["eval", str(path), "--format", "vqa-rad", "--images", str(images), "--out", str(out),
                 "--yes-send-images", *extra])


def _run_ids(out):
    return sorted(json.loads(p.read_text())["run_id"] for p in (out / "runs").glob("*/run.json"))


def test_concurrent_items_through_the_server_none_lost_or_duplicated(bench, experts, tmp_path, capsys):
    path, images = bench
    experts.hold_until_in_flight(3)  # each request waits for three in flight: concurrency is observable
    out = tmp_path / "ev"
    assert _eval(path, images, out, "--concurrency", "3") == 0, capsys.readouterr().err
    table = capsys.readouterr().out
    assert experts.max_in_flight == 3
    summary = json.loads((out / "eval.json").read_text())
    assert summary["format"] == "vqa-rad" and summary["concurrency"] == 3
    assert [i["key"] for i in summary["items"]] == ["11", "12", "13"]  # in the file's order, each once
    assert [i["correct"] for i in summary["items"]] == [True, True, False]  # "two" counts for 2; wrong lobe
    acc = summary["accuracy"]
    assert (acc["CLOSED"]["correct"], acc["OPEN"]["correct"], acc["OVERALL"]["n"]) == (1, 1, 3)
    assert "VQA-RAD" in table and "CARE-Flow" in table
    ids = _run_ids(out)
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(i["run_id"] for i in summary["items"]) == ids
    log = (out / "progress.jsonl").read_text().splitlines()
    assert len(log) == 4 and json.loads(log[0])["header"]["items"] == 3


def test_an_interrupted_evaluation_resumes_where_it_stopped(bench, experts, tmp_path, capsys, monkeypatch):
    import app.cli.eval_vqa as eval_vqa

    path, images = bench
    (images / "ct_40.png").rename(images / "later.png")  # item 13's image is missing at first
    real = eval_vqa.answer_item

    def interrupted(pipeline, strategy, item, *args):
        if item.key == "12":
            raise KeyboardInterrupt
        return real(pipeline, strategy, item, *args)

    monkeypatch.setattr(eval_vqa, "answer_item", interrupted)
    out = tmp_path / "ev"
    assert _eval(path, images, out) == 130
    assert "interrupted: 1 of 3 item(s) done; continue with --resume" in capsys.readouterr().err
    assert len(_run_ids(out)) == 1

    monkeypatch.setattr(eval_vqa, "answer_item", real)
    assert _eval(path, images, out) == 1  # never silently over an earlier evaluation
    assert "already holds an evaluation (1 item(s) done); pass --resume" in capsys.readouterr().err
    before = len(experts.chat_requests)
    assert _eval(path, images, out, "--resume") == 0
    err = capsys.readouterr().err
    assert "resuming: 1 of 3 item(s) already done" in err and "ct_40.png" in err  # 13: a clear error
    assert len(experts.chat_requests) - before == 2  # item 12 only: an entity and one VQA request
    summary = json.loads((out / "eval.json").read_text())
    assert [bool(i["error"]) for i in summary["items"]] == [False, False, True]

    (images / "later.png").rename(images / "ct_40.png")  # the image is back: only 13 is attempted
    assert _eval(path, images, out, "--resume") == 0
    summary = json.loads((out / "eval.json").read_text())
    assert [i["status"] for i in summary["items"]] == ["completed"] * 3
    assert len(_run_ids(out)) == 3 == len(set(_run_ids(out)))
    assert len(experts.chat_requests) - before == 4

    other = tmp_path / "other.json"
    other.write_text(json.dumps(RAD[:2]), encoding="utf-8")
    assert main(["eval", str(other), "--format", "vqa-rad", "--images", str(images), "--out", str(out),
                 "--resume", "--yes-send-images"]) == 1
    assert "holds an evaluation of something else" in capsys.readouterr().err


def test_multiple_choice_is_asked_with_its_options(bench, experts, tmp_path, capsys):
    _, images = bench
    omni = tmp_path / "OmniMedVQA.json"
    omni.write_text(json.dumps([{
        "dataset": "lung1", "question_id": "lung1_0", "question_type": "Modality Recognition",
        "question": "What imaging modality is this?", "gt_answer": "CT", "image_path": "ct_20.png",
        "option_A": "MRI", "option_B": "CT", "option_C": "X-ray", "modality_type": "CT"}]), encoding="utf-8")
    out = tmp_path / "omni"
    assert main(["eval", str(omni), "--format", "omnimedvqa", "--images", str(images), "--out", str(out),
                 "--yes-send-images"]) == 0, capsys.readouterr().err
    summary = json.loads((out / "eval.json").read_text())
    assert summary["items"][0]["prediction"] == "B" and summary["items"][0]["correct"]
    assert "Modality Recognition" in summary["accuracy"]
    (run,) = (out / "runs").glob("*/run.json")
    asked = json.loads(run.read_text())["question"]
    assert asked.splitlines()[1:5] == ["Options:", "A. MRI", "B. CT", "C. X-ray"]  # the audit shows what was asked


def test_concurrency_needs_a_department_server(tiny_models_dir, tmp_path, capsys):
    path = tmp_path / "v.json"
    path.write_text(json.dumps([{"image": "x.png", "question": "q?", "answer": "yes"}]), encoding="utf-8")
    assert main(["eval", str(path), "--profile", "tiny", "--concurrency", "4"]) == 1
    assert "needs a department server: profile tiny runs entity, vqa on this machine" in capsys.readouterr().err
