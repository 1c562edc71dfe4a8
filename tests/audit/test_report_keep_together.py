"""A figure never leaves its legend behind: the main figure, its captions and its mask legend share
a page, as do each evidence thumbnail and its caption, and a table and the notes under it, however
much text comes before them (a longer question, answer or entity list moves the figure down the
page in small steps, past a page foot). Checked on the PDF as drawn: the images on each page
(pypdf, pixel for pixel), the text and where it lies (PDFium)."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from app.audit.report import build_report
from app.audit.report.composite import composite
from app.audit.report.figure import CLINICIAN_BOX
from app.pipeline.record import Entity, RunRecord
from app.pipeline.vocab import EntitySource
from tests.audit.audit_records import FAKE_PATIENT, synthetic_record

# What is only ever drawn as a caption or under a table: never the first line of a page.
LEGEND = ("accepted (filled)", "discarded (outline only)", "evidence region given to the VQA model",
          "drawn by the clinician (dashed)")
CAPTIONS = ("as the models saw it", "Zoom-in crop evidence", "second image input to")


def _caption_starts(record: RunRecord) -> tuple[str, ...]:
    """How each caption starts (a line's start: PDFium finds no phrase broken over two lines)."""
    return (f"Slice {record.input.slice_index + 1}/{record.input.num_slices} as", "Zoom-in crop evidence",
            "second image input")
NOTES = ("Proposed by the entity model", "Merged as duplicates", "Kept but without a mask", "Counts:")


def _record(masks: int, question_words: int = 0, answer_words: int | None = None,
            base: RunRecord | None = None) -> RunRecord:
    """``base`` (the synthetic run by default) with ``masks`` masks (its own, repeated under new
    names), its question lengthened by so many words and its answer replaced by "Yes" and so many."""
    r = copy.deepcopy(base) if base is not None else synthetic_record(3)
    own = list(r.masks)
    r.masks = [dataclasses.replace(own[i % len(own)], entity=f"finding {i} {own[i % len(own)].entity}")
               for i in range(masks)]
    r.question = r.question + " left lower lobe" * question_words
    if answer_words is not None:
        r.final_answer = "Yes" + " probably a mass" * answer_words
    return r


@dataclasses.dataclass(frozen=True)
class Page:
    text: str  # squashed, in drawing order (the page furniture is drawn last)
    first_line: str
    images: list[tuple[float, float, float, float]]  # (left, bottom, right, top), points
    boxes: dict[str, list[tuple[float, float, float, float]]]  # caption -> where its first character lies
    has_figure: bool  # the main figure's pixels are on this page


def _pages(pdf: Path, record: RunRecord) -> list[Page]:
    import pypdfium2
    import pypdfium2.raw as pdfium_c

    drawn = [Entity(CLINICIAN_BOX, tuple(b), EntitySource.CLINICIAN) for b in record.input.clinician_boxes]
    fig, _ = composite(record.slice_rgb, record.masks, record.evidence, list(record.entities.final) + drawn)
    doc = pypdfium2.PdfDocument(str(pdf))
    out = []
    for p, page in zip(PdfReader(str(pdf)).pages, doc):
        raw = p.extract_text() or ""
        shown = [np.asarray(im.image.convert("RGB")) for im in p.images]
        tp = page.get_textpage()
        boxes = {}
        for caption in _caption_starts(record):
            found, search = [], tp.search(caption, match_case=True)
            while (hit := search.get_next()) is not None:
                found.append(tp.get_charbox(hit[0]))
            boxes[caption] = found
        images = [o.get_bounds() for o in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])]
        out.append(Page(" ".join(raw.split()), raw.strip().splitlines()[0] if raw.strip() else "", images, boxes,
                        any(a.shape == fig.shape and np.array_equal(a, fig) for a in shown)))
    doc.close()
    return out


def _assert_kept_together(pages: list[Page], record: RunRecord, what: str) -> None:
    (k,) = [i for i, p in enumerate(pages) if p.has_figure]
    accepted = sum(bool(m.accepted) for m in record.masks)
    # The whole legend on the figure's page, and on no other.
    assert pages[k].text.count("accepted (filled)") == accepted, f"{what}: legend not with the figure (page {k + 1})"
    assert pages[k].text.count("discarded (outline only)") == len(record.masks) - accepted, what
    assert not any(s in p.text for p in pages[:k] + pages[k + 1:] for s in LEGEND), f"{what}: legend elsewhere"
    assert "as the models saw it" in pages[k].text and "Zoom-in crop evidence" in pages[k].text, what
    assert all(pages[k].boxes[c] for c in _caption_starts(record)[:2]), what
    for n, p in enumerate(pages, 1):
        assert not any(s in p.first_line for s in LEGEND + CAPTIONS + NOTES), f"{what}: page {n} begins {p.first_line!r}"
        # Every caption lies under an image on its page: just below its bottom edge, across from it.
        for caption, found in p.boxes.items():
            for left, _, right, top in found:
                assert any(il - 20 <= left <= ir and ib - 60 < top < ib + 2 for il, ib, ir, _ in p.images), (
                    f"{what}: {caption!r} on page {n} is under no image")


def test_figure_legend_and_captions_share_a_page_wherever_the_figure_falls(tmp_path):
    seen = set()
    # Longer answers and questions, and more masks, move the figure past the foot of page 1.
    for masks, question, answer in ([(4, 0, a) for a in range(0, 44, 4)] + [(2, 15, a) for a in range(14, 30, 3)]
                                    + [(8, q, 0) for q in range(0, 60, 12)]):
        record = _record(masks, question, answer)
        pdf = build_report(record, tmp_path / f"m{masks}-q{question}-a{answer}.pdf", patient=FAKE_PATIENT)
        pages = _pages(pdf, record)
        _assert_kept_together(pages, record, f"{masks} masks, question +{question}, answer +{answer}")
        seen.add(next(i for i, p in enumerate(pages) if p.has_figure))
    assert seen == {0, 1}  # the sweep did move the figure over the page break


def test_a_figure_too_tall_with_its_legend_is_drawn_smaller_on_one_page(tmp_path):
    small = _record(2)
    full = _pages(build_report(small, tmp_path / "two.pdf", patient=FAKE_PATIENT), small)
    record = _record(30)  # at full size, figure and legend are taller than the page
    for size in ("A4", "Letter"):
        pages = _pages(build_report(record, tmp_path / f"many-{size}.pdf", patient=FAKE_PATIENT, page_size=size),
                       record)
        _assert_kept_together(pages, record, f"30 masks, {size}")
        (fig,) = [p for p in pages if p.has_figure]
        height = max(t - b for _, b, _, t in fig.images)
        assert height < 0.9 * max(t - b for _, b, _, t in next(p for p in full if p.has_figure).images)


def test_a_legend_longer_than_a_page_flows_on_from_the_figure(tmp_path):
    record = _record(90)
    pages = _pages(build_report(record, tmp_path / "legend.pdf", patient=FAKE_PATIENT), record)
    (k,) = [i for i, p in enumerate(pages) if p.has_figure]
    assert "finding 0 " in pages[k].text and "C = 0.91, accepted (filled)" in pages[k].text  # starts by the figure
    legend_text = " ".join(p.text for p in pages)
    assert legend_text.count("accepted (filled)") == sum(bool(m.accepted) for m in record.masks)  # none dropped


@pytest.mark.slow
def test_a_real_runs_figure_keeps_its_legend(real_run, tmp_path):
    real, patient = real_run
    seen = set()
    for answer in range(0, 60, 5):
        record = _record(max(len(real.masks), 1) * 3, 10, answer, base=real)
        pdf = build_report(record, tmp_path / f"real-{answer}.pdf", patient=patient)
        pages = _pages(pdf, record)
        (k,) = [i for i, p in enumerate(pages) if p.has_figure]
        assert all(f"finding {i} " in pages[k].text for i in range(len(record.masks))), f"answer +{answer}"
        assert not any(s in p.first_line for p in pages for s in LEGEND + CAPTIONS + NOTES), f"answer +{answer}"
        seen.add(k)
    assert seen == {0, 1}


def test_a_tables_notes_share_the_page_of_its_last_rows(tmp_path):
    # More masks and longer answers end the entity table at different heights, some at a page foot.
    cases = ([(3, a) for a in (18, 54, 57, 60)] + [(6, a) for a in range(24, 40, 3)] + [(10, a) for a in range(0, 30, 6)]
             + [(14, a) for a in (51, 54, 57)] + [(20, 27)])
    for masks, answer in cases:
        record = _record(masks, 0, answer)
        pdf = build_report(record, tmp_path / f"notes-{masks}-{answer}.pdf", patient=FAKE_PATIENT)
        pages = [" ".join((p.extract_text() or "").split()) for p in PdfReader(str(pdf)).pages]
        firsts = [(p.extract_text() or "").strip().splitlines()[0] for p in PdfReader(str(pdf)).pages]
        what = f"{masks} masks, answer +{answer}"
        assert not [f for f in firsts if any(s in f for s in NOTES)], what
        (k,) = {i for i, t in enumerate(pages) for s in NOTES[:3] if s in t}  # the entity notes: one page
        assert f"finding {masks - 1} " in pages[k] and "litemedsam (box)" in pages[k], what  # the table's last row
        (v,) = [i for i, t in enumerate(pages) if "Counts:" in t]
        assert "global image" in pages[v], what  # the vote table's last row


FOOTER_TOP = 60.0  # points: the disclaimer and page line lie below (app.audit.report.page)
BODY_BOTTOM = 20 * 72 / 25.4 + 6  # the bottom margin and the frame's padding


def _lowest_body_line(page: object) -> tuple[float, str]:
    """(bottom, text) of the lowest line of body text on a PDFium page (above the page footer)."""
    tp = page.get_textpage()
    bottoms = [b for b in (tp.get_charbox(i)[1] for i in range(tp.count_chars())) if b > FOOTER_TOP]
    low = min(bottoms)
    return low - BODY_BOTTOM, tp.get_text_bounded(0, low - 1, page.get_width(), low + 6).strip()


def test_a_long_reasoning_starts_under_its_evidence_block(tmp_path):
    import pypdfium2

    think = "The right upper lobe shows a rounded hyperdense lesion with smooth margins. " * 40
    base = synthetic_record(3, think=think)
    moved = 0
    for question in range(0, 72, 6):
        record = _record(6, question, 16, base=base)
        pdf = build_report(record, tmp_path / f"think-{question}.pdf", patient=FAKE_PATIENT)
        firsts = [(p.extract_text() or "").strip().splitlines()[0] for p in PdfReader(str(pdf)).pages]
        doc = pypdfium2.PdfDocument(str(pdf))
        for n in range(len(doc) - 1):
            free, last = _lowest_body_line(doc[n])
            assert "Reasoning (<think>)" not in last, f"question +{question}: page {n + 1} ends with the label"
            if firsts[n + 1].startswith("Reasoning (<think>)"):  # moved on whole: only for want of room
                moved += 1
                assert free < 12 + 2 * 10.6 + 8, f"question +{question}: {free:.0f} pt left blank on page {n + 1}"
        doc.close()
    assert moved  # some did move on, so the room was measured
