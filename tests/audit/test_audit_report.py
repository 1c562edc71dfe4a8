"""The evidence report PDF, parsed back with pypdf and rendered with PDFium (pypdfium2)."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from app.audit.report import DISCLAIMER, build_report
from app.audit.report.composite import composite
from app.pipeline.record import Override
from tests.audit.audit_records import FAKE_PATIENT, coord_events, synthetic_record


def _text(pdf: Path) -> tuple[list[str], str]:
    pages = [p.extract_text() or "" for p in PdfReader(str(pdf)).pages]
    return pages, " ".join(" ".join(pages).split())


def _squash(s: str) -> str:
    return " ".join(s.split())


def _xobject_images(pdf: Path) -> list[tuple[str, object]]:
    out = []
    for page in PdfReader(str(pdf)).pages:
        xobjects = page["/Resources"].get("/XObject", {})
        for name, ref in xobjects.items():
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                out.append((name, obj.get("/Filter")))
    return out


@pytest.fixture(scope="module")
def synthetic_pdf(tmp_path_factory):
    record = synthetic_record(1)
    ov = [Override.stored(record.run_id, 1, "2025-03-16T08:00:00+00:00", "final_answer",
                         {"old": "Yes", "new": "Yes, 2 cm RUL mass", "note": "confirmed on prior CT"}, "Dr. Ada Example")]
    out = tmp_path_factory.mktemp("rep") / "synthetic.pdf"
    build_report(record, out, overrides=ov, patient=FAKE_PATIENT)
    return record, out


def test_report_holds_the_audit_content_as_text(synthetic_pdf):
    record, pdf = synthetic_pdf
    pages, text = _text(pdf)
    assert record.question in text
    assert "Final answer" in text and "Yes" in text
    for m in record.masks:
        assert m.entity in text
    assert "0.91" in text and "0.41" in text  # confidences, 2 decimals
    assert "0.912" not in text and "0.4137" not in text
    assert "accepted (≥ 0.70)" in text and "discarded (< 0.70)" in text
    assert "Vote" in text and "Counted for winner" in text and "“yes”: 2" in text
    assert "OpenGVLab/InternVL3-8B-hf" in text and "OpenGVLab/InternVL3-2B-hf" in text
    assert "efefefefefef" in text and "ef" * 32 not in text  # weight hashes shortened
    assert "CARE-Flow: no coordinator" in text
    assert "Yes, 2 cm RUL mass" in text and "Dr. Ada Example" in text  # the clinician override
    assert _squash(record.answers[0].think) in text  # chain of thought
    assert "Zyxwvutsky, Quentin Marguerite" in text and "QX-99812" in text and "1961-07-04" in text
    assert "2024-03-15" in text and "ACC-771204" in text and "Saint Elsewhere Hospital" in text
    assert "running on CPU" in text  # warnings
    assert "answer 2025-03-15 10:20:38 UTC 12.60 12.50 0.10" in text  # per-stage timing row
    for n, page in enumerate(pages, 1):
        assert _squash(DISCLAIMER) in _squash(page)
        assert f"page {n} of {len(pages)}" in page


def test_images_are_embedded_losslessly(synthetic_pdf):
    record, pdf = synthetic_pdf
    images = _xobject_images(pdf)
    assert len(images) >= 3  # composite, crop evidence, mask evidence (+ the crop again as a thumbnail)
    for _, filt in images:
        filters = filt if isinstance(filt, list) else [filt]
        assert "/FlateDecode" in filters and "/DCTDecode" not in filters
    # The first image is the numpy composite, pixel for pixel.
    page = PdfReader(str(pdf)).pages[0]
    embedded = [np.asarray(im.image.convert("RGB")) for im in page.images]
    expected, legend = composite(record.slice_rgb, record.masks, record.evidence)
    assert any(e.shape == expected.shape and np.array_equal(e, expected) for e in embedded)
    crop_evidence = record.evidence[0].images[1]
    assert any(e.shape == crop_evidence.shape and np.array_equal(e, crop_evidence) for e in embedded)
    assert [e.label for e in legend] == ["right upper lobe mass", "pulmonary vessel", "zoom-in crop"]
    # The overlay really shows: accepted mask tinted, crop rectangle drawn in yellow.
    lesion = record.masks[0].mask
    assert not np.array_equal(expected[lesion], record.slice_rgb[lesion])
    x0, y0, x1, y1 = record.evidence[0].crop_rect
    assert tuple(expected[y0, (x0 + x1) // 2]) == (255, 225, 25)


def test_deidentify_removes_patient_identifiers(tmp_path):
    record = synthetic_record(2, question="Does Quentin Zyxwvutsky (QX-99812) have a mass?")
    out = build_report(record, tmp_path / "deid.pdf", patient=FAKE_PATIENT, deidentify=True)
    _, text = _text(out)
    for secret in ("Zyxwvutsky", "Quentin", "Marguerite", "QX-99812", "ACC-771204", "1961", "Elsewhere",
                   record.input.study_uid, record.input.series_uid, record.input.source_path):
        assert secret not in text, secret
    assert "de-identified" in text and "[removed]" in text
    assert "Does [removed] [removed] ([removed]) have a mass?" in text
    meta = PdfReader(str(out)).metadata
    assert "Zyxwvutsky" not in str(dict(meta))


def test_page_sizes(tmp_path):
    record = synthetic_record(3)
    a4 = build_report(record, tmp_path / "a4.pdf", patient=FAKE_PATIENT, page_size="A4")
    letter = build_report(record, tmp_path / "letter.pdf", patient=FAKE_PATIENT, page_size="letter")
    box_a4 = PdfReader(str(a4)).pages[0].mediabox
    box_letter = PdfReader(str(letter)).pages[0].mediabox
    assert (round(float(box_a4.width)), round(float(box_a4.height))) == (595, 842)
    assert (round(float(box_letter.width)), round(float(box_letter.height))) == (612, 792)
    with pytest.raises(ValueError, match="A4 or Letter"):
        build_report(record, tmp_path / "x.pdf", page_size="A3")


def test_long_chain_of_thought_flows_over_pages_and_odd_text_does_not_break(tmp_path):
    words = " ".join(f"step{i} the opacity near segment {i % 10} is reviewed;" for i in range(900))
    think = (words + " Greek αβγ, Cyrillic Жж, CJK 肺结节, Arabic رئة, emoji 🫁, control \x07\x1b chars, "
             "<b>not markup</b> & an unbroken " + "x" * 400 + " END-OF-REASONING")
    record = synthetic_record(4, think=think)
    record.mode = "coord"
    record.coordinator = coord_events()
    out = build_report(record, tmp_path / "long.pdf", patient=FAKE_PATIENT, page_size="Letter")
    pages, text = _text(out)
    assert len(pages) >= 6
    assert text.count("END-OF-REASONING") == 3  # every evidence pass's reasoning, in full
    assert "step899" in text and "αβγ" in text and "Жж" in text and "<b>not markup</b> &" in text
    assert "review" in text and "consistent" in text  # coordinator timeline
    assert f"page {len(pages)} of {len(pages)}" in pages[-1]


def test_rendered_page_is_not_blank(synthetic_pdf, tmp_path):
    _, pdf = synthetic_pdf
    import pypdfium2

    # Rendered by PDFium (a pip wheel, no system binary) at 60 dpi, in OpenCV's BGR order.
    img = pypdfium2.PdfDocument(str(pdf))[0].render(scale=60 / 72, rev_byteorder=False).to_numpy()
    assert img.ndim == 3 and img.shape[2] == 3
    h, w = img.shape[:2]
    assert abs(w - 496) <= 1 and abs(h - 702) <= 1  # A4 at 60 dpi
    dark = (img.mean(axis=2) < 200).mean()
    assert 0.05 < dark < 0.6  # text and the slice image, not an empty page
    # Mask colours made it to the rendered page (the accepted mask's red tint).
    b, g, r = (img[..., i].astype(int) for i in range(3))
    assert ((r - g > 60) & (r - b > 40)).sum() > 20


def test_slice_comes_from_the_source_when_the_record_has_none(tmp_path, ct_dicom_dir):
    """A record without images: re-read from source_path, accepted only if the sha256 matches."""
    import hashlib

    from app.study.display import slice_rgb
    from app.study.loader import load

    files = sorted(p for p in ct_dicom_dir.iterdir() if p.is_file())
    volume = load([files[0]]).volumes[0]  # one DICOM file = one slice
    pixels = np.ascontiguousarray(volume.slice(0))
    record = synthetic_record(5, size=volume.array.shape[2])
    record.masks = []
    record.evidence = record.evidence[2:]
    record.slice_rgb = None
    record.input.source_path, record.input.series_uid = str(files[0]), volume.series_uid
    record.input.slice_index, record.input.num_slices = 0, 1
    record.input.pixel_sha256 = hashlib.sha256(pixels.tobytes()).hexdigest()
    out = build_report(record, tmp_path / "src.pdf")  # no patient given: read from the source too
    page = PdfReader(str(out)).pages[0]
    expected = slice_rgb(volume, 0, volume.window.__class__(-600.0, 1500.0))
    assert np.array_equal(np.asarray(page.images[0].image.convert("RGB")), expected)
    _, text = _text(out)
    assert "LUNG1, RESEARCH" in text  # the patient header of the source file

    record.input.pixel_sha256 = "0" * 64  # different pixels than the models saw
    out = build_report(record, tmp_path / "mismatch.pdf")
    assert not PdfReader(str(out)).pages[0].images
    _, text = _text(out)
    assert "no longer match the recorded sha256" in text


@pytest.mark.slow
def test_report_of_a_real_run(real_run, tmp_path):
    record, patient = real_run
    out = build_report(record, tmp_path / "real.pdf", patient=patient)
    pages, text = _text(out)
    assert record.question in text and "LUNG1, RESEARCH" in text and "LUNG1" in text
    assert "clinician region 1" in text
    for m in record.masks:
        assert f"{m.confidence:.2f}" in text
    assert any(f"accepted (C_roi ≥ {m.tau:.2f})" in text for m in record.masks) and "C_paper" in text  # gate named, both shown
    assert "local/tiny-internvl" in text and "litemedsam" in text
    first_words = [w for w in re.split(r"\s+", record.final_answer) if w.isascii() and len(w) > 3][:2]
    assert all(w in text for w in first_words)
    assert all(_squash(DISCLAIMER) in _squash(p) for p in pages)
    assert all("/DCTDecode" not in str(f) for _, f in _xobject_images(out))
    deid = build_report(copy.deepcopy(record), tmp_path / "deid.pdf", patient=patient, deidentify=True)
    _, text = _text(deid)
    assert "LUNG1" not in text.upper().replace("LUNG1^", "") and "RESEARCH" not in text
