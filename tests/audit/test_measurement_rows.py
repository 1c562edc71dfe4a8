"""Measurements recorded with a run (overrides): the rows in effect and the PDF's section."""
from __future__ import annotations

from pypdf import PdfReader

from app.audit.present import override_sentence
from app.audit.present.measurements import measurement_rows
from app.audit.report import build_report
from app.pipeline.record import Override
from tests.audit.audit_records import FAKE_PATIENT, synthetic_record


def _ov(seq: int, kind: str, mid: str, tool: str, text: str, old: str = "") -> Override:
    m = {"id": mid, "kind": tool, "series": "1.2.3", "plane": "axial", "slice": 33,
         "points": [[1.0, 2.0], [3.0, 4.0]]}
    return Override.stored("run", seq, f"2025-03-16T08:0{seq}:00+00:00", kind,
                           {"target": tool.capitalize(), "old": old, "new": "" if kind != "measurement" else text,
                            "note": "axial slice 34", "measurement": m}, "Dr. Ada Example")


def test_rows_are_the_measurements_in_effect_latest_numbers_first_order():
    ovs = [_ov(1, "measurement", "a", "length", "12.00 mm"), _ov(2, "measurement", "b", "angle", "90.0\u00b0"),
           _ov(3, "measurement", "a", "length", "14.50 mm", old="12.00 mm"),
           _ov(4, "measurement_removed", "b", "angle", "", old="90.0\u00b0"),
           Override.stored("run", 5, "2025-03-16T08:05:00+00:00", "note", {"note": "not a measurement"})]
    rows = measurement_rows(ovs)
    assert [(r.number, r.tool, r.value, r.where) for r in rows] == [(1, "Length", "14.50 mm", "axial slice 34")]
    assert override_sentence(ovs[0]) == "you measured Length: 12.00 mm (axial slice 34)"
    assert override_sentence(ovs[3]) == "you removed the measurement Angle: 90.0\u00b0 (axial slice 34)"


def test_the_pdf_lists_the_measurements_only_when_there_are_some(tmp_path):
    record = synthetic_record(1)
    plain = build_report(record, tmp_path / "plain.pdf", patient=FAKE_PATIENT)
    with_m = build_report(record, tmp_path / "m.pdf", patient=FAKE_PATIENT, overrides=[
        _ov(1, "measurement", "a", "ellipse", "mean 41.20 HU, SD 3.10, min 30, max 52; area 98.10 mm\u00b2 (302 px)")])

    def text(p):
        return " ".join(" ".join(pg.extract_text() for pg in PdfReader(str(p)).pages).split())

    assert "Measurements" not in text(plain)
    t = text(with_m)
    section = t.split("Measurements", 1)[1]
    assert "Ellipse ROI" in section and "mean 41.20 HU, SD 3.10, min 30, max 52; area 98.10 mm\u00b2 (302 px)" in section
    assert "axial slice 34" in section
