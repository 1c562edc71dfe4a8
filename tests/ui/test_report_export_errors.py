"""A failed export from the window (File > Export Evidence Report) shows one plain sentence:
no reportlab repr, no traceback, no errno."""
from __future__ import annotations

import pytest

from app.audit.store import AuditStore
from tests.audit.audit_records import FAKE_PATIENT, synthetic_record

pytestmark = pytest.mark.slow


def _stored_run() -> str:
    record = synthetic_record(41)
    with AuditStore() as store:
        store.finish_run(record, patient=FAKE_PATIENT)
    return record.run_id


def _failed_export(qtbot, care, out) -> str:
    with qtbot.waitSignal(care.report_failed, timeout=60_000) as sig:
        care.export_report(_stored_run(), out)
    msg = sig.args[0]
    assert "\n" not in msg and "Traceback" not in msg and "0x" not in msg and "Errno" not in msg, msg
    assert msg.startswith("The evidence report was not written to ") and msg.endswith(".") and msg.count(". ") == 0
    assert msg in care.ask.message_text().replace("\n", " ") and care.ask.message_level == "error"
    return msg


def test_unwritable_path_is_one_plain_sentence(qtbot, care, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    msg = _failed_export(qtbot, care, blocker / "report.pdf")
    assert msg == "The evidence report was not written to report.pdf: a part of the folder path is a file, not a folder."


def test_layout_failure_is_one_plain_sentence(qtbot, care, tmp_path, monkeypatch):
    from reportlab.platypus.doctemplate import LayoutError

    import app.audit.report.document as document

    def absurd(*_a, **_k):
        raise LayoutError("Flowable <Table@0x7F65CB2CB4D0 2 rows x 1 cols(tallest row 7423)> too large on page 2")

    monkeypatch.setattr(document, "_layout", absurd)
    msg = _failed_export(qtbot, care, tmp_path / "report.pdf")
    assert msg == "The evidence report was not written to report.pdf: the report could not be laid out (details in the log)."
    assert not (tmp_path / "report.pdf").exists()
