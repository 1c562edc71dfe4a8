"""Defects seen in the real-window walk. Opening another study clears the Ask panel's last-run
state (it kept "Answered in 154.3 s - see the Audit panel" and the CPU warning beside an Audit
panel saying "No run yet"); the corner names the patient as the Series list does."""
from __future__ import annotations

from app.ui.run_worker import RunOutcome
from tests.audit.audit_records import synthetic_record


def test_opening_another_study_clears_the_last_runs_status(qtbot, main_window, ct_dicom_dir, mr_dicom_dir):
    w = main_window
    with qtbot.waitSignal(w.series_loaded, timeout=120_000):
        w.open_paths([ct_dicom_dir])
    ask = w.care.ask
    ask.run_started("Is there a mass?")
    ask.run_finished(RunOutcome(synthetic_record(1), persisted=True))
    assert ask.status.text().startswith("Answered in") and ask.elapsed.text().endswith(" s")
    assert "No GPU" in ask.message_text() and not ask.message.isHidden()
    with qtbot.waitSignal(w.series_loaded, timeout=120_000):
        w.open_paths([mr_dicom_dir])
    assert w.care.audit.record is None
    assert ask.status.text() == "" and ask.elapsed.text() == ""
    assert ask.message.isHidden() and ask.message_text() == ""


def test_the_corner_names_the_patient_as_the_series_list_does(qtbot, main_window, ct_dicom_dir):
    # The real CT's PatientName is "LUNG1^RESEARCH": the corner showed the raw DICOM form while
    # the Series list, the PACS browser and the PDF say "LUNG1, RESEARCH".
    w = main_window
    with qtbot.waitSignal(w.series_loaded, timeout=120_000):
        w.open_paths([ct_dicom_dir])
    assert w.current_volume.patient.name == "LUNG1^RESEARCH"
    painted: list[tuple[str, list[str]]] = []
    w.view._text_block = lambda _p, lines, corner: painted.append((corner, list(lines)))
    w.view.grab()
    (top_right,) = [lines for corner, lines in painted if corner == "tr"]
    assert top_right[0] == "LUNG1, RESEARCH" and "LUNG1, RESEARCH" in w.series_browser.caption.text()


def test_pacs_node_list_elides_a_long_label_instead_of_scrolling(qtbot, tmp_path):
    # The walk saw "Orthanc local (http://127.0.0.1:5875" cut by a horizontal scroll bar.
    from app.ui.pacs_nodes_dialog import PacsNodesDialog

    dlg = PacsNodesDialog(path=tmp_path / "pacs.toml")
    qtbot.addWidget(dlg)
    dlg.add_node()
    dlg.name.setText("Orthanc local")
    dlg.url.setText("http://127.0.0.1:58753/dicom-web")
    assert dlg.save(), dlg.message.text()
    dlg.show()
    qtbot.waitExposed(dlg)
    assert not dlg.list.horizontalScrollBar().isVisible()
    assert dlg.list.item(0).toolTip() == "Orthanc local (http://127.0.0.1:58753/dicom-web)"
