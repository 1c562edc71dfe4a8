"""The evidence report PDF (reportlab platypus): one run, everything an auditor needs.

All text is real PDF text (searchable, copyable) and comes from the run's presentation
(:mod:`app.audit.present`), so the report says what the audit panel and the terminal say;
images are embedded from PNG bytes, which reportlab stores as raw pixels under FlateDecode
(lossless: it only passes JPEG files through as DCTDecode, and we never hand it one). Every
page carries the decision-support disclaimer and "page N of M" (:mod:`.page`).
"""
from __future__ import annotations

import io
import logging
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
from .figure import figure
from .flowables import Ctx, Scrubber, styles
from .fonts import fonts
from .keep import FRAME_PADDING, heading_group_class
from .measurements_section import measurements
from .page import canvas_class, no_ascii85
from .study_section import study_scope

__all__ = ["DISCLAIMER", "PAGE_SIZES", "ReportError", "build_report", "failure_reason", "fmt_time"]

PAGE_SIZES = ("A4", "Letter")


class ReportError(Exception):
    """The report could not be laid out; the message is one plain clause (the cause is logged)."""

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # the traceback is for a configured log, never a terminal

_BUILD_LOCK = threading.Lock()  # rl_config is process-global (see page.no_ascii85)
_TOP, _BOTTOM = 16 * 72 / 25.4, 20 * 72 / 25.4  # page margins in points (16 mm, 20 mm)


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

    sizes = {"a4": A4, "letter": LETTER}
    key = str(page_size).strip().lower()
    if key not in sizes:
        raise ValueError(f"page size {page_size!r}: expected A4 or Letter")
    out = Path(out_path)

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pdf = _render(record, overrides, sizes[key], deidentify, patient, slice_image)
    except Exception as exc:  # reportlab's errors are reprs of flowables: not for a clinician
        log.error("report for run %s: layout failed", record.run_id, exc_info=True)
        raise ReportError("the report could not be laid out (details in the log)") from exc
    # The one all-or-nothing writer (temp sibling, fsync, rename): never half a PDF under ``out``.
    write_bytes_atomic(out, pdf)
    return out


def _render(record: RunRecord, overrides: Sequence[Any], pagesize: Any, deidentify: bool,
            patient: PatientInfo | None, slice_image: np.ndarray | None) -> bytes:
    from reportlab.lib.units import mm

    note = ""
    image = slice_image if slice_image is not None else record.slice_rgb
    if image is None or patient is None:
        from .slice_source import reload_source

        # De-identified too: the header says what to remove from the free text.
        src = reload_source(record)
        if image is None:
            image, note = src.rgb, src.note
        if patient is None:
            patient = src.patient

    f = fonts()
    margin = 18 * mm
    frame_height = pagesize[1] - _TOP - _BOTTOM - 2 * FRAME_PADDING
    inp = record.input
    scrub = Scrubber(patient, deidentify, (inp.study_uid, inp.series_uid, inp.source_path))
    pres = build_presentation(record, overrides)
    generated = fmt_time(datetime.now().astimezone().isoformat(timespec="seconds"))
    # "continued on page N" needs N: lay out again with the pages the last pass found, until
    # they hold (one pass when nothing on page 1 had to be cut).
    pages: dict[str, int] = {}
    for _ in range(4):
        ctx = Ctx(record, pres, f, styles(f), scrub, deidentify, pagesize[0] - 2 * margin, frame_height,
                  pages=pages)
        pdf = _layout(ctx, overrides, patient, image, note, pagesize, margin, generated)
        if not ctx.continuations or ctx.marks == pages:
            break
        pages = dict(ctx.marks)
    return pdf.getvalue()


def _layout(ctx: Ctx, overrides: Sequence[Any], patient: PatientInfo | None, image: np.ndarray | None, note: str, pagesize: Any,
            margin: float, generated: str) -> io.BytesIO:
    from reportlab.platypus import SimpleDocTemplate

    record = ctx.record
    story: list[Any] = []
    story += sec.title(ctx)
    story += sec.study(ctx, patient)
    story += sec.question_and_answer(ctx)
    story += figure(ctx, image, note)
    story += study_scope(ctx)  # study-scope runs only
    story += sec.continued(ctx)
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

    pdf = io.BytesIO()
    # The document info carries no patient data (the run id and the app only), scrubbed all the same.
    doc = SimpleDocTemplate(
        pdf, pagesize=pagesize, leftMargin=margin, rightMargin=margin, topMargin=_TOP,
        bottomMargin=_BOTTOM, title=ctx.scrub(f"CARE evidence report {record.run_id}"), author="CARE Viewer",
        subject="Decision-support evidence report", keywords="",
        creator=ctx.scrub(f"CARE Viewer {record.app_version}".strip()), pageCompression=1,
        keepTogetherClass=heading_group_class(),
    )
    with _BUILD_LOCK, no_ascii85():
        doc.build(story, canvasmaker=canvas_class(ctx.fonts, record.run_id, generated))
    return pdf


def failure_reason(exc: BaseException) -> str:
    """Why a report was not written, in plain words (no repr, no traceback)."""
    if isinstance(exc, ReportError):
        return str(exc)
    if isinstance(exc, (NotADirectoryError, FileExistsError)):  # the folder path runs through a file
        return "a part of the folder path is a file, not a folder"
    if isinstance(exc, OSError):
        return exc.strerror or "the file could not be written"
    if isinstance(exc, ValueError):
        return str(exc).splitlines()[0] if str(exc) else "invalid settings"
    return "an internal error (details in the log)"
