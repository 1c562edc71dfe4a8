"""A report that cannot be written says so in one plain line (CLI) or sentence (window):
never a reportlab repr or a traceback; the exception goes to the log for developers."""
from __future__ import annotations

import logging

import pytest

from app.cli.main import main
from app.pipeline.run_io import write_run
from tests.audit.audit_records import synthetic_record


@pytest.fixture()
def run_folder(tmp_path):
    folder = tmp_path / "run"
    write_run(synthetic_record(31), folder)
    return folder


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "Flowable" not in stderr and "0x" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_unwritable_output_is_one_plain_line(run_folder, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the report's folder should be")
    out = blocker / "report.pdf"
    assert main(["report", str(run_folder), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == f"error: cannot write the report {out}: a part of the folder path is a file, not a folder"


def test_layout_failure_is_one_plain_line_and_logged(run_folder, tmp_path, capsys, caplog, monkeypatch):
    from reportlab.platypus.doctemplate import LayoutError

    import app.audit.report.document as document

    def absurd(*_a, **_k):
        raise LayoutError("Flowable <Table@0x7F65CB2CB4D0 2 rows x 1 cols(tallest row 7423)> too large on page 1")

    monkeypatch.setattr(document, "_layout", absurd)
    out = tmp_path / "report.pdf"
    with caplog.at_level(logging.ERROR, logger="app.audit.report.document"):
        assert main(["report", str(run_folder), "--out", str(out)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == f"error: cannot write the report {out}: the report could not be laid out (details in the log)"
    assert not out.exists() and not list(tmp_path.glob("report.pdf*"))
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and logged[0].exc_info[0] is LayoutError  # the developer's record keeps the cause
