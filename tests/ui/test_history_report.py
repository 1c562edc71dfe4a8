"""History of the study's runs, reopening a run, and the evidence report from the GUI."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.care_session import QUESTION, TUMOUR_BOX, TUMOUR_SLICE, settle

pytestmark = pytest.mark.slow


def _ask_with_box(qtbot, care):
    """A run whose record has a real LiteMedSAM mask (the clinician box around the tumour)."""
    with qtbot.waitSignal(care.run_finished, timeout=120_000) as sig:
        care.start_run(QUESTION, "tiny", boxes=[TUMOUR_BOX])
    rec = sig.args[0].record
    assert rec.status == "completed"
    return rec


def test_history_lists_runs_and_reopening_restores_overlays(qtbot, care):
    rec = _ask_with_box(qtbot, care)
    settle(qtbot, care)  # the history is listed off the GUI thread
    view = care.view
    tree = care.history.tree
    assert tree.topLevelItemCount() == 1
    item = tree.topLevelItem(0)
    assert item.text(1) == QUESTION and item.text(3) == "completed" and item.text(2) == " ".join(rec.final_answer.split())
    masks = [n for n in view.overlays.names() if n.startswith("care:mask:")]
    assert masks

    # Leave the run: the overlays go, the viewer moves elsewhere.
    care.audit.show_record(None)
    view.set_slice(5)
    assert not [n for n in view.overlays.names() if n.startswith("care:")]

    # Reopen from the history (double-click): slice, overlays and audit panel come back.
    care.history_dock.raise_()
    qtbot.waitUntil(tree.isVisible)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # a real double-click
    with qtbot.waitSignal(care.run_reopened, timeout=30_000):  # the run is loaded off the GUI thread
        qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # starts with a press
    assert care.audit.record is not None and care.audit.record.run_id == rec.run_id
    assert view.slice_index == TUMOUR_SLICE
    assert sorted(n for n in view.overlays.names() if n.startswith("care:mask:")) == sorted(masks)
    i = next(i for i, m in enumerate(rec.masks) if m.entity == "clinician region 1")
    restored = view.overlays.get(f"care:mask:{i}")
    assert (restored.mask == rec.masks[i].mask).all() and restored.visible == rec.masks[i].accepted
    # Overrides made after reopening are counted in the history.
    care.audit.mask_rows[i].discard.click()
    settle(qtbot, care)
    assert tree.topLevelItem(0).text(4) == "1"


def test_report_export_writes_a_pdf_with_the_question(qtbot, care, tmp_path):
    from pypdf import PdfReader

    rec = _ask_with_box(qtbot, care)
    assert care.act_export.isEnabled()
    out = tmp_path / "reports" / "evidence.pdf"
    out.parent.mkdir()
    with qtbot.waitSignal(care.report_written, timeout=120_000) as sig:
        care.export_report(rec.run_id, out, page_size="Letter", deidentify=True)
    assert sig.args[0] == str(out) and out.is_file()
    reader = PdfReader(str(out))
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "mass in the right lung" in " ".join(text.split())
    width, height = (float(x) for x in reader.pages[0].mediabox.upper_right)
    assert (round(width), round(height)) == (612, 792)  # Letter
    # De-identified: the patient's name from the DICOM header is not in the PDF.
    name = care.window.current_volume.patient.name
    assert name and name not in text


def test_export_dialog_offers_page_size_and_deidentification(qtbot, care):
    from app.ui.ask_audit import ExportReportDialog

    dlg = ExportReportDialog(care.window, "/tmp/x/care-report.pdf")
    qtbot.addWidget(dlg)
    assert [dlg.size_combo.itemText(i) for i in range(dlg.size_combo.count())] == ["A4", "Letter"]
    assert not dlg.deidentify()
    dlg.deid.setChecked(True)
    dlg.path_edit.setText("/tmp/report")
    assert dlg.deidentify() and dlg.path() == "/tmp/report.pdf"
