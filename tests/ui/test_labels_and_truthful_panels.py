"""What the window says is literally true: the profile's weights beside the chooser, the plane
of a radiograph or ultrasound, every patient of a multi-patient folder, and a run that finishes
after its study was replaced (real widgets, real files, the real tiny pipeline)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.audit.present import fmt_person_name
from tests.ui.care_session import QUESTION, isolate_settings, open_ct, settle
from tests.ui.ui_helpers import grab_rgb

BASE = "CARE pipeline with off-the-shelf base models"


def _store(name: str) -> Path:
    import data_store  # pydicom-data

    return Path(data_store.__file__).parent / "data" / name


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from app.ui.main_window import MainWindow

    isolate_settings(monkeypatch, tmp_path)
    w = MainWindow()
    w.resize(1400, 900)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.care.shutdown()
    w.cancel_loading()


def _open(qtbot, w, *paths) -> None:
    with qtbot.waitSignal(w.series_loaded, timeout=120_000):
        w.open_paths(list(paths))


# ----- the profile chooser -------------------------------------------------------------------
def test_the_ask_panel_shows_what_each_profiles_weights_are(qtbot, window):
    ask = window.care.ask
    ask.set_profile("care-paper")
    note = ask.weights_note
    assert note.isVisible() and note.text().startswith(f"Weights: {BASE} (InternVL3-2B-hf, SAM3")
    assert "not the paper's trained experts" in note.text() and "expect roughly base-model accuracy" in note.text()
    assert BASE in ask.profile.toolTip() and BASE in note.toolTip()
    idx = ask.profile.findData("care-paper")
    assert BASE in ask.profile.itemData(idx, Qt.ItemDataRole.ToolTipRole)

    ask.set_profile("tiny")
    assert "Random-initialised test checkpoints" in note.text() and "for tests only" in note.text()

    # The paper's slot: listed, marked unavailable with its reason, never "run models fetch".
    idx = ask.profile.findData("paper-experts")
    assert ask.profile.itemText(idx).startswith("paper-experts  (unavailable)")
    ask.set_profile("paper-experts")
    assert "not published yet" in note.text() and "not published yet" in ask.profile.toolTip()
    assert "models fetch" not in ask.profile.toolTip()


def test_the_audit_panel_shows_the_recorded_weights_or_not_recorded(qtbot, window):
    import copy

    from app.pipeline.disclosure import weights_disclosure
    from app.pipeline.profiles import load_profile
    from tests.audit.audit_records import synthetic_record

    tiny = load_profile("tiny")
    rec = synthetic_record(1)
    rec.profile, rec.profile_weights, rec.weights_disclosure = "tiny", tiny.weights, weights_disclosure(tiny)
    panel = window.care.audit
    panel.show_record(rec, [], on_view=False)
    text = _texts(panel.sec_prov)
    assert f"Profile tiny weights: {rec.weights_disclosure}" in text and "Random-initialised" in text
    old = copy.copy(rec)
    old.profile_weights, old.weights_disclosure = None, ""
    panel.show_record(old, [], on_view=False)
    assert "Profile tiny weights: not recorded" in _texts(panel.sec_prov)


# ----- a: the plane of projection images -----------------------------------------------------
def test_ask_names_the_plane_of_a_radiograph_and_an_ultrasound_as_the_viewer_does(qtbot, window):
    from pydicom.data import get_testdata_file

    from app.study.edge_labels import plane_name
    from app.study.reformat import native_plane

    _open(qtbot, window, _store("RG1_UNCI.dcm"))
    assert window.current_volume.modality == "CR"
    target = window.care.ask.target.text()
    assert "(projection)" in target and "axial" not in target.lower()

    _open(qtbot, window, Path(get_testdata_file("examples_rgb_color.dcm")))
    assert window.current_volume.modality == "US"
    target = window.care.ask.target.text()
    # The viewer's corner word (app.study.edge_labels.plane_name), never "axial".
    word = plane_name(window.current_volume, native_plane(window.current_volume)).lower()
    assert word in ("projection", "image") and f"({word})" in target and "axial" not in target.lower()
    assert "axial" not in window.care.ask.run_button.toolTip()


# ----- b: a folder with two patients ---------------------------------------------------------
def test_the_series_panel_names_every_patient_of_a_two_patient_folder(qtbot, window, tmp_path,
                                                                      ct_dicom_dir, mr_dicom_dir):
    folder = tmp_path / "two-patients"
    shutil.copytree(ct_dicom_dir, folder / "ct")
    shutil.copytree(mr_dicom_dir, folder / "mr")
    _open(qtbot, window, folder)
    browser = window.series_browser
    vols = browser.volumes
    names = {v.patient.name for v in vols}
    assert len(vols) == 2 and len(names) == 2, [v.patient for v in vols]
    caption = browser.caption.text()
    assert caption.startswith("2 patients") and not any(n in caption for n in names)
    for row, v in enumerate(vols):
        text = browser.list.item(row).text()
        other = fmt_person_name(next(n for n in names if n != v.patient.name))
        assert f"Patient {fmt_person_name(v.patient.name)} · {v.patient.patient_id}" in text and other not in text


def test_one_patient_keeps_its_name_in_the_header(qtbot, window, ct_dicom_dir):
    _open(qtbot, window, ct_dicom_dir)
    v = window.current_volume
    assert window.series_browser.caption.text() == f"{fmt_person_name(v.patient.name)} · {v.patient.patient_id}\n1 series"
    assert "Patient" not in window.series_browser.list.item(0).text()


# ----- c: a run that finishes after its study was replaced -----------------------------------
@pytest.mark.slow
def test_a_run_finishing_after_another_study_opened_stays_with_its_own_study(qtbot, care, mr_dicom_dir,
                                                                           ct_dicom_dir):
    w = care.window
    ct = w.current_volume
    lock = care.pipelines.lock("tiny")
    lock.acquire()  # the run waits for the pipeline: it is surely still in flight when the MR opens
    try:
        care.ask.set_question(QUESTION)
        with qtbot.waitSignal(care.run_started, timeout=30_000):
            qtbot.mouseClick(care.ask.run_button, Qt.MouseButton.LeftButton)
        assert care.handle is not None
        _open(qtbot, w, mr_dicom_dir)
        assert w.current_volume.modality == "MR"
        before = grab_rgb(w.view)
    finally:
        lock.release()
    with qtbot.waitSignal(care.run_finished, timeout=180_000) as sig:
        pass
    rec = sig.args[0].record
    assert rec is not None and rec.input.study_uid == ct.study_uid != w.current_volume.study_uid
    # Nothing of the CT run lands on the MR: no record in the audit panel, no overlay, no export.
    assert care.audit.record is None and care.current_run_id is None
    assert not care.act_export.isEnabled()
    assert np.array_equal(grab_rgb(w.view), before)
    line = f"The run on {ct.display_name} finished; open that study to see it."
    assert care.ask.message_text() == line and care.ask.status.text() == line
    assert rec.final_answer not in care.ask.message_text()
    # It is in the history of its own study, and opens from there.
    open_ct(qtbot, w, ct_dicom_dir)
    settle(qtbot, care)
    qtbot.waitUntil(lambda: rec.run_id in [r.run_id for r in care.history.runs], timeout=30_000)
    with qtbot.waitSignal(care.run_reopened, timeout=60_000):
        care.reopen(rec.run_id)
    assert care.audit.record is not None and care.audit.record.run_id == rec.run_id


def _texts(section) -> str:
    from PySide6.QtWidgets import QLabel

    return "\n".join(lab.text() for lab in section.findChildren(QLabel))
