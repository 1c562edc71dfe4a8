"""Opening another study clears the Ask panel's last-run state: the real-window walk saw
"Answered in 154.3 s - see the Audit panel" and the CPU warning still shown beside an Audit
panel saying "No run yet" for the newly opened study."""
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
