"""``care-viewer --self-test`` run from source: the same checks IT runs on an installed bundle."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import selftest
from app.cli.main import main as cli_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def passed(tiny_models_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("self-test")
    lines: list[str] = []
    result = selftest.run_self_test(out, models_folder=tiny_models_dir, say=lines.append)
    return result, lines, out


@pytest.mark.slow
def test_self_test_passes_end_to_end(passed):
    result, lines, out = passed
    assert result.ok and result.exit_code == 0, lines
    names = [c.name for c in result.checks]
    assert names == ["environment", "sample study", "CARE pipeline (tiny profile)", "evidence report PDF",
                     "DICOM SEG + SR", "Qt (headless)"]
    assert all(line.startswith("[ok] ") for line in lines), lines
    # The run really went through every stage on the bundled sample with both segmenters.
    record = result.record
    assert record.status == "completed" and record.errors == []
    assert record.question == selftest.QUESTION
    assert {m.backend for m in record.masks} == {"litemedsam", "sam3"}
    assert len(record.answers) == 3 and record.vote is not None
    assert record.models["vqa"].weights_sha256 and record.models["box_segmenter"].backend == "litemedsam"


@pytest.mark.slow
def test_self_test_writes_the_run_as_dicom_seg_and_sr_that_read_back(passed):
    import pydicom

    from app.dicom_export import read_care_sr

    result, _, out = passed
    files = sorted((out / "dicom").glob("*.dcm"))
    assert [f.name.split("-")[-1] for f in files] == ["seg.dcm", "sr.dcm"]
    seg, sr = (pydicom.dcmread(f) for f in files)
    assert (seg.Modality, sr.Modality) == ("SEG", "SR")
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == result.record.input.study_uid
    assert read_care_sr(sr).run_id == result.record.run_id


@pytest.mark.slow
def test_self_test_report_is_a_readable_pdf_of_that_run(passed):
    from pypdf import PdfReader

    result, _, out = passed
    assert result.report_path == out / selftest.REPORT_NAME
    text = "\n".join(page.extract_text() for page in PdfReader(result.report_path).pages)
    assert result.record.run_id in text
    assert "right lung" in text  # the question


def test_tiny_profile_is_pinned_to_the_given_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("CARE_MODELS_DIR", str(tmp_path / "elsewhere"))
    profile = selftest.tiny_profile(tmp_path / "bundle-models")
    assert profile.get("vqa").path() == tmp_path / "bundle-models" / "tiny-internvl"
    assert profile.get("segmenter").path() == tmp_path / "bundle-models" / "tiny-sam3"
    # The bundled LiteMedSAM is not a folder checkpoint: untouched.
    box = profile.get("box_segmenter")
    assert box.bundled and box.local_dir == ""


def test_missing_checkpoints_fail_with_exit_3_and_name_the_folder(tmp_path, capsys):
    empty = tmp_path / "no-models"
    empty.mkdir()
    code = cli_main(["--self-test", "--models", str(empty), "--no-qt", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == selftest.EXIT_WEIGHTS_MISSING == 3
    assert "[FAIL] CARE pipeline (tiny profile)" in captured.out
    assert "SELF-TEST FAILED" in captured.err and str(empty) in captured.err
    assert "Traceback" not in captured.out + captured.err
    assert not (tmp_path / "out" / selftest.REPORT_NAME).exists()


def test_unreadable_sample_fails_with_exit_2(tmp_path, monkeypatch, capsys):
    import app.study.sample as sample

    broken = tmp_path / "ct-chest-lung1"
    broken.mkdir()
    (broken / "IM0001.dcm").write_bytes(b"DICM but not really a DICOM file")
    monkeypatch.setattr(sample, "sample_study_path", lambda: broken)
    result = selftest.run_self_test(tmp_path / "out", models_folder=tmp_path, qt=False, say=lambda s: None)
    assert result.exit_code == selftest.EXIT_UNREADABLE == 2
    failed = [c for c in result.checks if not c.ok]
    assert [c.name for c in failed] == ["sample study"] and str(broken) in failed[0].detail
    # Nothing after the sample ran: the pipeline has no study to work on.
    assert [c.name for c in result.checks] == ["environment", "sample study"]

    monkeypatch.setattr(sample, "sample_study_path", lambda: tmp_path / "gone")
    assert cli_main(["--self-test", "--models", str(tmp_path), "--no-qt"]) == 2
    assert "bundled sample study is missing" in capsys.readouterr().err


def test_frozen_bundle_reads_its_own_manifest_and_the_user_models_folder(tmp_path):
    """Inside a bundle (sys._MEIPASS set) the manifest is the bundled one and weights live in the user dir."""
    code = (
        "import sys, json; sys._MEIPASS = sys.argv[1]\n"
        "from app.pipeline import profiles\n"
        "print(json.dumps([str(profiles.manifest_path()), str(profiles.models_dir())]))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CARE_MODELS_DIR", "CARE_MANIFEST")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bundle")], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    manifest, models = json.loads(out)
    assert manifest == str(tmp_path / "bundle" / "models" / "profiles.toml")
    assert Path(models).is_relative_to(tmp_path / "xdg") and not Path(models).is_relative_to(REPO)
