"""`care-viewer history` and `care-viewer report`, in process through the real entry point."""
from __future__ import annotations

import json
from pathlib import Path

from pypdf import PdfReader

from app.audit.store import AuditStore
from app.cli.main import main
from app.pipeline.run_io import write_run
from tests.audit.audit_records import FAKE_PATIENT, synthetic_record


def _two_runs() -> tuple:
    older, newer = synthetic_record(11), synthetic_record(12, question="Any pleural effusion?")
    older.created, newer.created = "2025-02-01T09:00:00.000+00:00", "2025-02-02T09:00:00.000+00:00"
    with AuditStore() as store:
        store.finish_run(older, patient=FAKE_PATIENT)
        store.finish_run(newer, patient=FAKE_PATIENT, parent_run_id=older.run_id)
        store.append_override(newer.run_id, "final_answer", {"old": "Yes", "new": "No"}, who="dr.x")
    return older, newer


def test_history_lists_runs_newest_first(data_dir, capsys):
    assert main(["history"]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    older, newer = _two_runs()
    assert main(["history"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["RUN", "TIME", "STATUS"]
    assert out[1].startswith(newer.run_id[:8]) and out[2].startswith(older.run_id[:8])
    assert "Any pleural effusion?" in out[1] and "completed" in out[1] and out[1].rstrip().endswith("1")
    assert main(["history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in rows] == [newer.run_id, older.run_id]
    assert rows[0]["overrides"] == 1 and rows[0]["parent_run_id"] == older.run_id
    assert rows[0]["final_answer"] == "Yes" and rows[0]["profile"] == "synthetic" and rows[0]["mode"] == "flow"
    assert rows[0]["series_uid"] == newer.input.series_uid and rows[0]["slice_index"] == 17
    assert main(["history", "--json", "--study", older.input.study_uid]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [older.run_id]


def test_report_from_the_audit_trail(data_dir, tmp_path, capsys):
    _, newer = _two_runs()
    out = tmp_path / "r.pdf"
    assert main(["report", newer.run_id[:10], "--out", str(out), "--page-size", "letter"]) == 0
    assert "written to" in capsys.readouterr().out
    reader = PdfReader(str(out))
    assert round(float(reader.pages[0].mediabox.height)) == 792
    text = " ".join(p.extract_text() for p in reader.pages)
    assert "Any pleural effusion?" in text and "QX-99812" in text and "dr.x" in text  # patient + override
    deid = tmp_path / "d.pdf"
    assert main(["report", newer.run_id, "--out", str(deid), "--deidentify"]) == 0
    text = " ".join(p.extract_text() for p in PdfReader(str(deid)).pages)
    assert "QX-99812" not in text and "Zyxwvutsky" not in text and "de-identified" in text


def test_report_from_a_run_folder(data_dir, tmp_path, capsys):
    record = synthetic_record(13)
    write_run(record, tmp_path / "run")
    out = tmp_path / "folder.pdf"
    assert main(["report", str(tmp_path / "run"), "--out", str(out)]) == 0
    text = " ".join(p.extract_text() for p in PdfReader(str(out)).pages)
    assert record.question in text and "not recorded" in text  # no patient header in a bare run folder
    assert len(PdfReader(str(out)).pages[0].images) == 2  # slice.png and the crop from the folder


def test_report_unknown_or_unreadable_runs_exit_2(data_dir, tmp_path, capsys):
    assert main(["report", "0123456789abcdef", "--out", str(tmp_path / "x.pdf")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run 0123456789abcdef") and "Traceback" not in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "run.json").write_text("{not json")
    assert main(["report", str(bad), "--out", str(tmp_path / "y.pdf")]) == 2
    assert "not a readable run record" in capsys.readouterr().err
    assert not (tmp_path / "x.pdf").exists() and not (tmp_path / "y.pdf").exists()


def test_history_limit_must_be_positive(data_dir, capsys):
    _two_runs()
    assert main(["history", "--limit", "0"]) == 1
    assert "--limit must be at least 1" in capsys.readouterr().err
    assert main(["history", "--limit", "1", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_history_on_a_database_from_a_newer_app_is_one_line(data_dir, capsys):
    import sqlite3

    _two_runs()
    db = next(Path(data_dir).rglob("audit.sqlite3"))
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_version VALUES (99, 'future')")
    conn.commit()
    conn.close()
    assert main(["history"]) == 2
    err = capsys.readouterr().err
    assert "newer than this app" in err and "Traceback" not in err
