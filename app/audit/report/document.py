"""The evidence report PDF (reportlab platypus): one run, everything an auditor needs.

All text is real PDF text (searchable, copyable) and comes from the run's presentation
(:mod:`app.audit.present`), so the report says what the audit panel and the terminal say;
images are embedded from PNG bytes, which reportlab stores as raw pixels under FlateDecode
(lossless: it only passes JPEG files through as DCTDecode, and we never hand it one). Every
page carries the decision-support disclaimer and "page N of M" (:mod:`.page`).
"""
from __future__ import annotations

import io
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from app.pipeline.record import RunRecord
from app.pipeline.run_io import write_bytes_atomic
from app.study.volume import PatientInfo

from ..present import DISCLAIMER, build_presentation, fmt_time
from . import sections as sec
from .flowables import Ctx, Scrubber, styles
from .fonts import fonts
from .measurements_section import measurements
from .page import canvas_class, no_ascii85

__all__ = ["DISCLAIMER", "PAGE_SIZES", "build_report", "fmt_time"]

PAGE_SIZES = ("A4", "Letter")

_BUILD_LOCK = threading.Lock()  # rl_config is process-global (see page.no_ascii85)


def build_report(
    record: RunRecord,
    out_path: str | Path,
    *,
    overrides: Sequence[Any] = (),
    page_size: str = "A4",
    deidentify: bool = False,
    patient: PatientInfo | None = None,
    slice_image: np.ndarray | None = None,
) -> Path:
    """Write the evidence report for ``record`` to ``out_path`` (PDF); returns the path.

    ``overrides``: clinician changes appended after the run (the audit store's
    :class:`~app.pipeline.record.Override` rows); the record's own ``overrides`` are always
    included first. ``slice_image``: the windowed slice RGB when the record carries none
    (``record.slice_rgb``); without either the original file is re-read, if it still
    exists and its pixels still match the recorded sha256.
    """
    from reportlab.lib.pagesizes import A4, LETTER
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    sizes = {"a4": A4, "letter": LETTER}
    key = str(page_size).strip().lower()
    if key not in sizes:
        raise ValueError(f"page size {page_size!r}: expected A4 or Letter")
    out = Path(out_path)

    note = ""
    image = slice_image if slice_image is not None else record.slice_rgb
    if image is None or (patient is None and not deidentify):
        from .slice_source import reload_source

        src = reload_source(record)
        if image is None:
            image, note = src.rgb, src.note
        if patient is None and not deidentify:
            patient = src.patient

    f = fonts()
    margin = 18 * mm
    pagesize = sizes[key]
    ctx = Ctx(record, build_presentation(record, overrides), f, styles(f), Scrubber(patient, deidentify), deidentify,
              pagesize[0] - 2 * margin)

    story: list[Any] = []
    story += sec.title(ctx)
    story += sec.study(ctx, patient)
    story += sec.question_and_answer(ctx)
    story += sec.figure(ctx, image, note)
    story += sec.entities(ctx)
    story += sec.evidence_and_answers(ctx)
    story += sec.vote(ctx)
    story += sec.coordinator(ctx)
    story += sec.overrides(ctx)
    story += measurements(ctx, overrides)
    story += sec.models(ctx)
    story += sec.timings(ctx)
    story += sec.warnings(ctx)
    story += sec.provenance(ctx)

    generated = fmt_time(datetime.now().astimezone().isoformat(timespec="seconds"))
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf = io.BytesIO()
    doc = SimpleDocTemplate(
        pdf, pagesize=pagesize, leftMargin=margin, rightMargin=margin, topMargin=16 * mm,
        bottomMargin=20 * mm, title=f"CARE evidence report {record.run_id}", author="CARE Viewer",
        subject="Decision-support evidence report", creator=f"CARE Viewer {record.app_version}".strip(),
        pageCompression=1,
    )
    with _BUILD_LOCK, no_ascii85():
        doc.build(story, canvasmaker=canvas_class(f, record.run_id, generated))
    # The one all-or-nothing writer (temp sibling, fsync, rename): never half a PDF under ``out``.
    write_bytes_atomic(out, pdf.getvalue())
    return out
