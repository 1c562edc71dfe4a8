"""A section heading never ends a PDF page alone: "Evidence-grounded answers" is drawn on the
page of the first evidence block, however much text comes before it (the real-window walk saw it
alone at the foot of page 2)."""
from __future__ import annotations

import re

from pypdf import PdfReader

from app.audit.report import build_report
from tests.audit.audit_records import synthetic_record


def test_evidence_heading_shares_its_page_with_the_first_block(tmp_path):
    checked = 0
    # A longer question pushes the section down the page in small steps, past a page foot.
    for n in range(0, 300, 12):
        record = synthetic_record(1, question="Is there a mass? " + "left lower lobe " * n)
        pdf = tmp_path / f"r{n}.pdf"
        build_report(record, pdf)
        pages = [" ".join((p.extract_text() or "").split()) for p in PdfReader(str(pdf)).pages]
        (k,) = [i for i, t in enumerate(pages) if "Evidence-grounded answers" in t]
        first = re.search(r"Evidence 1: \S+", pages[k] + " " + (pages[k + 1] if k + 1 < len(pages) else ""))
        assert first is not None
        assert first.group(0) in pages[k], f"question +{n} words: the heading is alone on page {k + 1}"
        checked += 1
    assert checked > 10
