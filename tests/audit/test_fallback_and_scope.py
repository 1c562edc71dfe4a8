"""A CARE-Coord run whose coordinator failed is headed as answered by the CARE-Flow fallback,
with the reason, in amber (never the green "Answered"), in the audit panel, the PDF and the
CLI; and every answer states what it rests on ("about slice 34/48 only") in all three."""
from __future__ import annotations

import html
import re

import pytest
from pypdf import PdfReader

from app.audit.present import build_presentation, scope_text
from app.audit.report import build_report
from app.cli.main import main
from app.pipeline.record import InputInfo
from app.pipeline.run_io import read_run

QUESTION = "Is there a mass in the right lung?"
FALLBACK = "Answered by the CARE-Flow fallback"


def _flat(text: str) -> str:
    return " ".join(text.split())


class _NoOverlays:
    def names(self):
        return []

    def __contains__(self, key):
        return False


class _View:
    overlays, volume = _NoOverlays(), None


@pytest.mark.parametrize("info, expected", [
    (InputInfo(slice_index=33, num_slices=61, plane="axial"), "about axial slice 34/61 only"),
    (InputInfo(slice_index=33, num_slices=61, plane="Coronal"), "about coronal slice 34/61 only"),
    (InputInfo(slice_index=33, num_slices=61), "about slice 34/61 only"),  # plane not recorded
    (InputInfo(slice_index=2, num_slices=20, plane="axial", temporal=True), "about frame 3/20 only"),
    (InputInfo(slice_index=0, num_slices=1, plane="projection"), "about this image only"),
    (InputInfo(slice_index=0, num_slices=1), "about this image only"),
    (InputInfo(slice_index=4, num_slices=9, plane="image"), "about image 5/9 only"),
])
def test_scope_wording(info, expected):
    assert scope_text(info) == expected


@pytest.fixture()
def coord_fallback_run(tiny_models_dir, ct_dicom_dir, ct_tumour, tmp_path, capsys):
    """(record, CLI output, run folder): `ask --mode coord` with the tiny profile, whose local
    coordinator (random weights) never replies with valid JSON, so the run falls back."""
    out = tmp_path / "run"
    code = main(["ask", str(ct_dicom_dir), "-q", QUESTION, "--profile", "tiny", "--mode", "coord",
                 "--slice", str(ct_tumour.slice_index), "--box", ct_tumour.box_arg, "--out", str(out),
                 "--max-new-tokens", "24"])
    text = capsys.readouterr().out
    assert code == 0, text
    record = read_run(out)
    d = record.coordinator_decision
    assert record.status == "completed" and d.source == "vote" and d.failure
    return record, text, out


@pytest.mark.slow
def test_coordinator_failure_is_headed_as_the_care_flow_fallback(coord_fallback_run, qtbot, tmp_path):
    from app.ui.audit.widgets import SEVERITY
    from app.ui.audit_panel import AuditPanel

    record, cli, _ = coord_fallback_run
    failure = record.coordinator_decision.failure
    k, n = record.input.slice_index + 1, record.input.num_slices
    scope = re.compile(rf"about (axial )?slice {k}/{n} only")
    p = build_presentation(record)
    assert p.header.status_label == FALLBACK and p.header.severity == "warn"
    assert failure in p.header.status_reason and p.header.answer_how == "CARE-Flow fallback majority vote"

    # CLI: the heading with the reason, and the scope.
    assert f"{FALLBACK}: the coordinator failed ({failure})" in cli
    assert scope.search(cli) and "scope: " in cli

    # The real audit panel: amber heading with the reason, not the green "Answered".
    panel = AuditPanel(_View())
    qtbot.addWidget(panel)
    panel.show_record(record, on_view=False)
    status_html = panel.status_label.text()
    heading = re.search(r"<span style='color:(#[0-9a-f]+); font-weight:600'>([^<]*)</span>", status_html)
    assert heading and heading.group(2) == FALLBACK
    assert heading.group(1) == SEVERITY["warn"] != SEVERITY["ok"]
    shown = html.unescape(re.sub(r"<[^>]+>", " ", status_html))
    assert failure in _flat(shown) and ">Answered<" not in status_html
    assert scope.search(html.unescape(re.sub(r"<[^>]+>", " ", panel.answer_label.text())))

    # The PDF, parsed back: page 1 carries the heading, the reason and the scope next to the answer.
    pdf = build_report(record, tmp_path / "report.pdf")
    page1 = _flat(PdfReader(str(pdf)).pages[0].extract_text() or "")
    assert "Final answer (CARE-Flow fallback majority vote)" in page1
    assert f"{FALLBACK}: the coordinator failed" in page1 and _flat(failure)[:60] in page1
    assert scope.search(page1)


@pytest.mark.slow
def test_a_flow_run_is_answered_in_green_with_its_scope(tiny_pipeline_factory, ct_volume, ct_tumour, qtbot, tmp_path):
    from app.audit.present.terminal import summary_lines
    from app.ui.audit.widgets import SEVERITY
    from app.ui.audit_panel import AuditPanel

    record = tiny_pipeline_factory(24, with_text_segmenter=False).run(
        ct_volume, ct_tumour.slice_index, QUESTION, boxes=[ct_tumour.box])
    p = build_presentation(record)
    assert (p.header.status_label, p.header.severity, p.header.status_reason) == ("Answered", "ok", "")
    want = scope_text(record.input)
    assert want.endswith(f"slice {ct_tumour.slice_index + 1}/{ct_volume.num_slices} only")
    assert f"scope: {want}" in summary_lines(record)
    panel = AuditPanel(_View())
    qtbot.addWidget(panel)
    panel.show_record(record, on_view=False)
    assert f"color:{SEVERITY['ok']}; font-weight:600'>Answered<" in panel.status_label.text()
    assert want in panel.answer_label.text()
    page1 = _flat(PdfReader(str(build_report(record, tmp_path / "r.pdf"))).pages[0].extract_text() or "")
    assert f"Scope: {want}" in page1 and FALLBACK not in page1
