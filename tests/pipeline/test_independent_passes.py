"""Honest votes: each distinct (prompt, images) VQA input is asked once and votes once.

When no mask passes tau the crop and mask evidence fall back to the global image, so the three
requests are one request: the model is asked once, run.json records ``independent_passes``
1, and the CLI and the PDF say "1 independent pass (crop and mask fell back to the global
image)" instead of a unanimous-looking "3 of 3 votes"."""
from __future__ import annotations

import json

import pytest
from pypdf import PdfReader

from app.audit.present import build_presentation
from app.audit.present.terminal import summary_lines
from app.cli.main import main
from app.pipeline import prompts
from app.pipeline.backends.internvl import InternVLBackend
from app.pipeline.flow import vote
from app.pipeline.record import Answer, RunRecord
from app.pipeline.types import EvidenceType

CROP, MASK, GLOBAL = EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL
QUESTION = "Is there a mass in the right lung?"
ONE_PASS = "1 independent pass (crop and mask fell back to the global image)"


@pytest.fixture()
def vqa_requests(monkeypatch):
    """Every VQA request the real tiny backend is given, one list per ``generate`` call."""
    calls: list[list] = []
    original = InternVLBackend.generate

    def counting(self, requests, *args, **kwargs):
        vqa = [r for r in requests if r.lead.startswith("Image-1 is a medical image.\n")]  # not entity/coordinator
        if vqa:
            calls.append(vqa)
        return original(self, requests, *args, **kwargs)

    monkeypatch.setattr(InternVLBackend, "generate", counting)
    return calls


def test_rows_sharing_an_input_vote_once():
    # The engine's rows for a fallen-back run: crop and mask share the global row's call.
    answers = [Answer(CROP, 1, answer="No", same_input_as=2, fell_back=True),
               Answer(MASK, 1, answer="No", same_input_as=2, fell_back=True),
               Answer(GLOBAL, 1, answer="No")]
    r = vote(answers)
    assert r.independent_passes == 1 and r.counts == {"no": 1} and r.winner == "no"
    assert [v.same_input_as for v in r.votes] == [GLOBAL, GLOBAL, None]
    assert r.detail == ONE_PASS
    # Three separate inputs (old behaviour for distinct evidence) still vote three times.
    r = vote([Answer(CROP, 1, answer="yes"), Answer(MASK, 2, answer="no"), Answer(GLOBAL, 3, answer="yes")])
    assert r.independent_passes == 3 and r.counts == {"yes": 2, "no": 1}
    assert r.detail == "2 of 3 independent passes agree"


def test_an_older_record_keeps_its_wording_and_gets_no_invented_count(tmp_path):
    """run.json written before the count existed: it loads, and nothing claims a pass count."""
    r = vote([Answer(CROP, 1, answer="yes"), Answer(MASK, 2, answer="yes"), Answer(GLOBAL, 3, answer="yes")])
    rows = [Answer(e, i + 1, answer="yes", normalized="yes") for i, e in enumerate((CROP, MASK, GLOBAL))]
    record = RunRecord(question=QUESTION, status="completed", final_answer="yes", vote=r, answers=rows)
    data = json.loads(json.dumps(record.to_dict()))
    del data["vote"]["independent_passes"]
    data["vote"]["detail"] = "3 of 3 votes"  # the old wording
    for row in data["vote"]["votes"] + data["answers"]:
        row.pop("same_input_as"), row.pop("fell_back")
    old = RunRecord.from_dict(data)
    assert old.vote.independent_passes == 0 and old.answers[0].same_input_as is None
    p = build_presentation(old)
    assert p.header.agreement == "3 of 3 evidence passes agree" and p.vote.passes_text == ""
    assert p.vote.winner_count == " (3 of 3 votes)"
    assert not any("independent" in line for line in summary_lines(old))


@pytest.mark.slow
def test_no_mask_passes_tau_asks_the_global_request_once(tiny_models_dir, ct_dicom_dir, ct_tumour, vqa_requests,
                                                         tmp_path, capsys):
    out, pdf = tmp_path / "run", tmp_path / "run.pdf"
    k = ct_tumour.slice_index
    code = main(["ask", str(ct_dicom_dir), "-q", QUESTION, "--profile", "tiny", "--slice", str(k), "--box",
                 ct_tumour.box_arg, "--tau", "1.0", "--out", str(out), "--max-new-tokens", "24"])
    text = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "run.json").read_text())
    assert data["masks"] and not any(m["accepted"] for m in data["masks"])  # the box was segmented, below tau
    assert [e["fallback"] is not None for e in data["evidence"]] == [True, True, False]
    # ONE generate call with ONE request, and it is exactly the global request.
    assert len(vqa_requests) == 1 and len(vqa_requests[0]) == 1
    assert vqa_requests[0][0].prompt == prompts.vqa_prompt(GLOBAL)
    assert vqa_requests[0][0].lead == prompts.vqa_lead(QUESTION)
    assert len(vqa_requests[0][0].images) == 1
    vqa_calls = [c for c in data["calls"] if c["role"] == "vqa"]
    assert len(vqa_calls) == 1 and vqa_calls[0]["evidence"] == "global"
    # Every evidence type keeps its row, the fallen-back ones pointing at the global row.
    answers = data["answers"]
    assert [a["evidence"] for a in answers] == ["crop", "mask", "global"]
    assert [a["same_input_as"] for a in answers] == [2, 2, None]
    assert [a["fell_back"] for a in answers] == [True, True, False]
    assert {a["call_index"] for a in answers} == {data["calls"].index(vqa_calls[0])}
    assert data["vote"]["independent_passes"] == 1 and sum(data["vote"]["counts"].values()) <= 1
    assert data["vote"]["detail"].startswith(ONE_PASS)
    # The CLI says so, and so does the PDF (parsed back).
    assert ONE_PASS in text and "3 of 3" not in text
    assert f"scope: about slice {k + 1}/48 only" in text or f"scope: about axial slice {k + 1}/48 only" in text
    assert main(["report", str(out), "--out", str(pdf)]) == 0
    pdf_text = " ".join(" ".join((p.extract_text() or "").split()) for p in PdfReader(str(pdf)).pages)
    assert ONE_PASS in pdf_text and "3 of 3 votes" not in pdf_text and "3 of 3 independent" not in pdf_text
    assert "no: fell back: same input as global image" in pdf_text  # the vote table's counted column


@pytest.mark.slow
def test_accepted_masks_ask_three_distinct_inputs(tiny_pipeline_factory, ct_volume, ct_tumour, vqa_requests):
    pipeline = tiny_pipeline_factory(24, with_text_segmenter=False)
    record = pipeline.run(ct_volume, ct_tumour.slice_index, QUESTION, boxes=[ct_tumour.box])
    assert record.status == "completed", record.errors
    assert any(m.accepted for m in record.masks) and not any(e.fallback for e in record.evidence)
    assert len(vqa_requests) == 1 and len(vqa_requests[0]) == 3  # one batched call, three inputs
    assert len({r.prompt for r in vqa_requests[0]}) == 3
    assert [a.same_input_as for a in record.answers] == [None, None, None]
    assert len({a.call_index for a in record.answers}) == 3
    assert record.vote.independent_passes == 3
    assert "of 3 independent passes agree" in record.vote.detail or "tie on votes" in record.vote.detail
    p = build_presentation(record)
    assert "of 3 independent passes" in p.vote.winner_count and "fell back" not in p.vote.passes_text
