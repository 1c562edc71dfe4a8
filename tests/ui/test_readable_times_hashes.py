"""Times and hashes as a reader sees them in the audit panel: the "past runs from PACS" box and
the provenance section show a minute-precision time (its zone only when it is not this
computer's, none invented for a naive time) and hashes cut to 12 hex digits and an ellipsis;
the whole values are in the tooltip and copyable. One helper each, shared with the CLI table."""
from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
from PySide6.QtCore import Qt

from app.audit.present import build_presentation, fmt_local_minute, short_hash
from app.dicom_export import CareSrSummary
from app.dicom_export.provenance import model_lines
from app.pipeline.record import RunRecord
from app.pipeline.types import ModelInfo

SHA = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"  # a real weights sha256
REVISION = "4fd7ec2b5ed6c5b5cd6d8d4a0b4a0e54c3d0e4a1"  # 40-hex revision
PIXELS = "0f" * 32
RAW_ISO = re.compile(r"T\d\d:\d\d:\d\d")
LONG_HEX = re.compile(r"[0-9a-f]{32,}")


@pytest.fixture
def berlin(monkeypatch):
    """This computer's zone is Europe/Berlin (UTC+01:00 in December) for the test."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _record(created: str) -> RunRecord:
    r = RunRecord(question="Is there a mass in the right lung?", created=created)
    r.models = {
        "vqa": ModelInfo("vqa", "internvl", "OpenGVLab/InternVL3-2B-hf", REVISION, SHA),
        "box_segmenter": ModelInfo("box_segmenter", "litemedsam", "local/litemedsam", "", SHA[::-1]),
    }
    r.input.pixel_sha256 = PIXELS
    return r


def _summary(created: str) -> CareSrSummary:
    # The SR's model lines are written by model_lines (app.dicom_export.sr): the same text here.
    return CareSrSummary(run_id="3f2a9c1e" + "0" * 24, question="Is there a mass in the right lung?",
                         answer="Yes, a mass in the right upper lobe.", mode="CARE-Flow", created=created,
                         models=tuple(model_lines(_record(created))), sop_instance_uid="1.2.826.0.1.3680043.10.1")


def test_time_to_the_minute_on_this_computers_clock(berlin):
    assert fmt_local_minute("2026-12-02T06:40:12.345+01:00") == "2026-12-02 06:40"  # already local
    assert fmt_local_minute("2026-12-02T06:40:12.345+00:00") == "2026-12-02 07:40"  # UTC, on Berlin's clock
    assert fmt_local_minute("2026-12-02T06:40:12+05:30") == "2026-12-02 02:10"
    assert fmt_local_minute("2026-07-01T06:40:12+00:00") == "2026-07-01 08:40"  # summer time that day
    assert fmt_local_minute("2026-12-02T06:40:12") == "2026-12-02 06:40"  # naive: as written, never shifted
    assert fmt_local_minute("") == "-" and fmt_local_minute("yesterday") == "yesterday"


def test_short_hash():
    assert short_hash(SHA) == SHA[:12] + "\u2026" and short_hash("") == "" and short_hash("local") == "local"


def test_pacs_runs_box_shows_readable_time_and_short_hashes(qtbot, berlin):
    from app.ui.audit.pacs_runs import PacsRunsBox

    created = "2026-12-02T05:40:12.345+00:00"  # as the pipeline writes it (UTC)
    box = PacsRunsBox()
    qtbot.addWidget(box)
    box.set_summaries([_summary(created)])
    box.show()
    (row,) = box.rows
    shown = box.title.text() + row.text()
    assert not RAW_ISO.search(shown), shown
    assert not LONG_HEX.search(shown), shown
    assert "2026-12-02 06:40" in shown  # the UTC time on the Berlin computer's clock
    assert SHA[:12] + "\u2026" in shown and REVISION[:12] + "\u2026" in shown
    # The whole values: in the tooltip, and the row's text can be selected and copied.
    tip = row.toolTip()
    assert created in tip and SHA in tip and REVISION in tip and SHA[::-1] in tip
    assert row.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse


def test_pacs_runs_copy_puts_the_full_values_on_the_clipboard(qtbot, berlin):
    from PySide6.QtGui import QGuiApplication

    from app.ui.audit.pacs_runs import summary_text

    s = _summary(datetime(2026, 12, 2, 6, 40, 12).astimezone().isoformat())
    text = summary_text(s)
    QGuiApplication.clipboard().setText(text)
    assert SHA in QGuiApplication.clipboard().text() and s.created in text and s.run_id in text


def test_provenance_section_shows_short_hashes_full_in_the_tooltip(qtbot):
    from app.ui.audit.provenance import fill_provenance
    from app.ui.audit.widgets import Section

    sec = Section("Provenance")
    qtbot.addWidget(sec)
    fill_provenance(sec, build_presentation(_record("2026-12-02T05:40:12+00:00")))
    (lab,) = [sec.body_layout.itemAt(i).widget() for i in range(sec.body_layout.count())]
    assert not LONG_HEX.search(lab.text()), lab.text()
    assert f"sha256 {SHA[:12]}\u2026" in lab.text() and f"@ {REVISION[:12]}\u2026" in lab.text()
    assert f"pixels sha256 {PIXELS[:12]}\u2026" in lab.text()
    assert SHA in lab.toolTip() and PIXELS in lab.toolTip()
