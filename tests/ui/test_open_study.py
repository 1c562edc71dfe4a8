"""Opening studies in the real window: multi-patient folders and DICOMDIR trees finish
opening, a failed open keeps the study on screen, a cine offers no reformat, and the
Ask/Audit/History panels follow the study and the reopened run."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.study.reformat import Plane
from tests.study.test_multi_series import multi_patient_folder, write_cine
from tests.ui.care_session import QUESTION, settle

LOAD_MS = 120_000


def _open(qtbot, window, paths, n_series: int) -> None:
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.series_browser.list.count() == n_series and not window.is_loading,
                    timeout=LOAD_MS)


def test_multi_patient_folder_finishes_opening(qtbot, main_window, tmp_path, ct_dicom_dir, mr_dicom_dir):
    w = main_window
    folder = multi_patient_folder(tmp_path / "study", ct_dicom_dir, mr_dicom_dir)
    _open(qtbot, w, [folder], 3)
    assert w.status.currentMessage().startswith("Opened 3 series")
    assert sorted(v.num_slices for v in w.volumes) == [5, 25, 48]
    assert w.current_volume in w.volumes
    assert w.care.run_target() is not None  # Ask is no longer blocked
    # Every series can be shown from the list.
    for row in range(3):
        w.series_browser.list.setCurrentRow(row)
        assert w.current_volume is w.volumes[row]


def test_dicomdir_tree_opens_every_series(qtbot, main_window, tmp_path, ct_dicom_dir, mr_dicom_dir):
    from pydicom.fileset import FileSet

    fs = FileSet()
    for folder in (ct_dicom_dir, mr_dicom_dir):
        for p in sorted(Path(folder).iterdir()):
            fs.add(str(p))
    fs.write(str(tmp_path / "media"))
    _open(qtbot, main_window, [tmp_path / "media" / "DICOMDIR"], 2)
    assert sorted(v.num_slices for v in main_window.volumes) == [25, 48]


@pytest.mark.parametrize("bad", ["empty", "garbage"])
def test_failed_open_keeps_the_current_study(qtbot, main_window, tmp_path, mr_dicom_dir, bad):
    w = main_window
    _open(qtbot, w, [mr_dicom_dir], 1)
    shown = w.current_volume
    folder = tmp_path / bad
    folder.mkdir()
    if bad == "garbage":
        (folder / "scan.dcm").write_bytes(b"not a dicom file at all" * 20)
    with qtbot.waitSignal(w.load_failed, timeout=LOAD_MS) as sig:
        w.open_paths([str(folder)])
    assert str(folder) in sig.args[0]
    reason = "empty folder" if bad == "empty" else "not a DICOM file"
    assert reason in sig.args[0]
    msg = w.status.currentMessage()
    assert str(folder) in msg and reason in msg and "stays" in msg and "\n" not in msg
    assert w.current_volume is shown and w.view.volume is shown
    assert w.series_browser.list.count() == 1 and w.volumes == [shown]
    assert w.care.run_target() is not None


def test_cine_offers_no_coronal_or_sagittal(qtbot, main_window, tmp_path, mr_dicom_dir):
    w = main_window
    write_cine(tmp_path / "cine.dcm")
    _open(qtbot, w, [tmp_path / "cine.dcm"], 1)
    assert w.current_volume.temporal
    assert "10 frames (cine)" in w.series_browser.list.item(0).text()
    for plane in (Plane.CORONAL, Plane.SAGITTAL):
        a = w.act_planes[plane]
        assert not a.isEnabled() and "cine" in a.toolTip()
        w.view.set_plane(plane)  # the shortcut path is refused too
        assert w.view.plane != plane
    _open(qtbot, w, [mr_dicom_dir], 1)  # a spatial stack offers all three again
    assert all(a.isEnabled() and "cine" not in a.toolTip() for a in w.act_planes.values())


@pytest.mark.slow
def test_panels_follow_the_study_and_the_reopened_run(qtbot, care, mr_dicom_dir, ct_dicom_dir):
    w = care.window
    with qtbot.waitSignal(care.run_finished, timeout=LOAD_MS) as sig:
        care.start_run(QUESTION, "tiny")
    rec = sig.args[0].record
    settle(qtbot, care)
    assert care.audit.record is not None and care.current_run_id == rec.run_id
    care.ask.set_question("a question typed for the CT")

    # Another study: the Audit, Ask and History panels let go of the CT's run.
    with qtbot.waitSignal(w.series_loaded, timeout=LOAD_MS):
        w.open_paths([str(mr_dicom_dir)])
    settle(qtbot, care)
    assert care.audit.record is None and care.current_run_id is None
    assert care.ask.question_text() == "" and not care.act_export.isEnabled() and not care.act_draw.isChecked()
    assert care.history.tree.topLevelItemCount() == 0

    # Back on the CT, reopening the run puts its question into Ask as well.
    with qtbot.waitSignal(w.series_loaded, timeout=LOAD_MS):
        w.open_paths([str(ct_dicom_dir)])
    settle(qtbot, care)
    assert care.history.tree.topLevelItemCount() == 1
    care.ask.set_question("something else")
    with qtbot.waitSignal(care.run_reopened, timeout=30_000):
        care.reopen(rec.run_id)
    assert care.ask.question_text() == QUESTION
    assert care.audit.record.run_id == rec.run_id == care.current_run_id
