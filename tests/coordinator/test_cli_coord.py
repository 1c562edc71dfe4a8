"""The CLIs with a remote (thin-client) profile on loopback servers: consent before any
image leaves, `ask --mode coord`, `models list` health checks, and `eval --mode coord` change
statistics on a small labelled set."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main

from coord_support import CoordScript, ExpertScript, plan, review, write_manifest

pytestmark = pytest.mark.slow


@pytest.fixture()
def manifest(tmp_path, monkeypatch, experts, coord_server):
    path = write_manifest(tmp_path / "profiles.toml", experts, coord_server)
    monkeypatch.setenv("CARE_MANIFEST", str(path))
    return path


@pytest.fixture()
def plain_experts(experts) -> ExpertScript:
    """Entities without boxes (no segmentation needed): every pass answers on the global view."""
    script = ExpertScript(entity_reply="<think>t</think><answer>right lung</answer>",
                          answers={"global": ("A dense mass in the right lung.", "yes", -0.05)})
    experts.set_responder(script)
    return script


def test_ask_refuses_to_send_images_without_consent(manifest, experts, plain_experts, ct_dicom_dir, tmp_path,
                                                    capsys):
    code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "--yes-send-images" in err and experts.base_url in err and "Traceback" not in err
    assert experts.requests == [] and not (tmp_path / "run").exists()  # nothing left the machine


def test_text_only_coordinator_needs_consent_too(manifest, experts, coord_server, plain_experts, ct_dicom_dir,
                                                 tmp_path, capsys):
    """The question and the experts' reasoning are patient data too: a text-only remote
    coordinator is not contacted without consent, and the run is refused before anything leaves."""
    from app.pipeline.remote.consent import ConsentStore

    ConsentStore().grant(experts.base_url, via="test")  # the experts only
    code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--mode", "coord", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 1 and coord_server.base_url in err and "Traceback" not in err
    assert coord_server.requests == [] and experts.requests == []
    # Flow mode never contacts the coordinator, so it needs no consent for it.
    assert main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--out", str(tmp_path / "f")]) == 0
    assert coord_server.requests == []


def test_ask_with_consent_runs_records_and_audits(manifest, experts, plain_experts, ct_dicom_dir, tmp_path, capsys,
                                                  isolated_config):
    from app.pipeline.remote.consent import ConsentStore
    from app.pipeline.run_io import read_run

    out = tmp_path / "run"
    code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--out", str(out), "--yes-send-images"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = read_run(out)
    assert record.status == "completed" and record.final_answer == "yes" and record.models["vqa"].backend == "remote"
    assert ConsentStore().get(experts.base_url).via == "--yes-send-images"
    # Entities, then ONE VQA request: without a mask crop and mask fell back to the global request.
    assert len(experts.chat_requests) == 2 and "answer: yes" in captured.out
    assert "1 independent pass (crop and mask fell back to the global image)" in captured.out
    assert (tmp_path / "care-data" / "audit.sqlite3").is_file()  # persisted to the audit trail


def test_ask_coord_prints_the_timeline(manifest, experts, coord_server, plain_experts, ct_dicom_dir, tmp_path,
                                      capsys):
    coord_server.set_responder(CoordScript([plan("global")], [review("revise", "A1", final_answer="no")]))
    out = tmp_path / "run"
    code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--mode", "coord", "--out", str(out),
                 "--yes-send-images", "--uncertainty-threshold", "0.01", "--reground"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "coordinator plan: global" in captured.out and "review: revise A1" in captured.out
    assert "coordinator changed the vote answer 'yes' -> 'no'" in captured.out and "answer: no" in captured.out
    # --uncertainty-threshold 0.01 beat the profile's 10: the answer (u = 0.05) triggered re-grounding,
    # though with no mask and global already used there was nothing else to look at.
    assert ("entropy-guided re-grounding (heuristic after MedVR; not part of CARE): none "
            "(answer-token uncertainty 0.050 > threshold 0.01") in captured.out
    assert "may revise: yes" in captured.out  # a remote coordinator revises by default, as in the paper
    assert "no accepted mask to zoom into" in captured.out
    from app.pipeline.run_io import read_run

    assert read_run(out).coordinator_decision.changed_vote


def test_models_list_shows_endpoints_and_health(tmp_path, monkeypatch, experts, coord_server, closed_port, capsys):
    extra = (f'[profiles.down]\ndescription = "endpoint down"\n[profiles.down.vqa]\nbackend = "remote"\n'
             f'repo_id = "m"\nendpoint = "http://127.0.0.1:{closed_port}/v1"\n')
    monkeypatch.setenv("CARE_MANIFEST", str(write_manifest(tmp_path / "p.toml", experts, coord_server,
                                                           extra_profiles=extra)))
    assert main(["models", "list", "--json", "--check", "--timeout", "2"]) == 0  # offline without --check
    data = json.loads(capsys.readouterr().out)
    profiles = {p["name"]: p for p in data["profiles"]}
    loop = {"+".join(m["roles"]): m for m in profiles["loop"]["models"]}
    assert set(loop) == {"entity+vqa", "box_segmenter", "coordinator"}
    ev = loop["entity+vqa"]
    assert ev["status"] == "remote" and ev["installed"] and ev["endpoint"] == experts.base_url
    assert ev["health"]["reachable"] and ev["health"]["serves_model"] is True
    assert loop["coordinator"]["health"]["served_models"] == ["gpt-5"]
    (down,) = profiles["down"]["models"]
    assert not down["health"]["reachable"] and "connection refused" in down["health"]["error"]
    assert main(["models", "list", "--profile", "down", "--timeout", "2"]) == 0
    text = capsys.readouterr().out
    assert "UNREACHABLE" in text and "remote endpoint is unreachable" in text
    assert main(["models", "list", "--profile", "loop", "--no-check"]) == 0
    assert "not checked" in capsys.readouterr().out


def test_eval_coord_reports_corrections_and_erroneous_changes(manifest, experts, coord_server, plain_experts,
                                                               shared_data, tmp_path, capsys):
    image = str(shared_data / "ct-chest-lung1" / "lung1_image.nrrd")
    items = [
        {"image": image, "question": "Q1 is there a mass?", "answer": "yes", "answer_type": "CLOSED"},
        {"image": image, "question": "Q2 is the lung normal?", "answer": "no", "answer_type": "CLOSED"},
        {"image": image, "question": "Q3 is there a nodule?", "answer": "yes", "answer_type": "CLOSED"},
        {"image": image, "question": "Q4 where is the mass?", "answer": "right upper lobe", "answer_type": "OPEN"},
        {"image": image, "question": "Q5 is there an effusion?", "answer": "yes", "answer_type": "CLOSED"},
    ]
    dataset = tmp_path / "vqa.json"
    dataset.write_text(json.dumps(items), encoding="utf-8")
    decisions = {  # the experts always vote "yes"
        "Q1": review("accept", "A1"),  # unchanged, right
        "Q2": review("revise", "A1", final_answer="no"),  # correction
        "Q3": review("revise", "A1", final_answer="no"),  # erroneous
        "Q4": review("revise", "A1", final_answer="left lung"),  # neutral: wrong -> another wrong
        "Q5": "this is not JSON",  # twice: the coordinator fails, the vote stands
    }

    def coordinator(prompt, n_images, req):
        name = req["response_format"]["json_schema"]["name"]
        if name == "care_plan":
            return json.dumps(plan("global"))
        q = next(k for k in decisions if f"Question: {k} " in prompt)
        d = decisions[q]
        return d if isinstance(d, str) else json.dumps(d)

    coord_server.set_responder(coordinator)
    out = tmp_path / "eval"
    code = main(["eval", str(dataset), "--mode", "coord", "--out", str(out), "--yes-send-images"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    # The paper's definition: changed = corrections + erroneous; the neutral rewording apart.
    assert "coordinator changed 2 of 5 vote answers (40.00%; changed = wrong -> right + right -> wrong" in captured.out
    assert "neutral, not counted as changed (a different answer, same correctness)    1   20.00%" in captured.out
    assert "corrections (wrong -> right)      1   20.00%" in captured.out
    assert "erroneous   (right -> wrong)      1   20.00%" in captured.out
    assert "failed on 1 item(s)" in captured.out
    summary = json.loads((out / "eval.json").read_text())
    ch = summary["coordinator_changes"]
    assert (ch["n"], ch["changed"], ch["corrections"], ch["erroneous"], ch["neutral"], ch["fallbacks"]) == (
        5, 2, 1, 1, 1, 1)
    assert ch["changed_pct"] == pytest.approx(40.0) and "changed = wrong->right" in ch["definition"]
    assert [i["coord_change"] for i in summary["items"]] == ["unchanged", "correction", "erroneous", "neutral",
                                                             "unchanged"]
    assert summary["accuracy"]["OVERALL"]["correct"] == 3  # Q1, Q2, and Q5 (the vote "yes" stood)
