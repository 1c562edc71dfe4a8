"""De-identification that neither leaks nor mangles: the header's identifiers go as whole
tokens wherever the report's text repeats them, dates typed into the question go, ordinary
words that contain a name stay; the PDF's metadata and images carry none of it."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from pypdf import PdfReader

from app.audit.report import build_report
from app.audit.report.composite import composite
from app.audit.report.deid import Scrubber, date_spellings
from app.pipeline.record import Override
from app.study.volume import PatientInfo
from tests.audit.audit_records import synthetic_record

PATIENT = PatientInfo(name="DOE^JO^Marguerite", patient_id="QX-99812", birth_date="19610704", sex="F",
                      study_date="20240315", accession="ACC-771204", institution="Saint Elsewhere Hospital")
QUESTION = ("Does the bone of Jo Doe (QX-99812, born 04.07.1961, seen at Saint Elsewhere Hospital on 2023-02-01) "
            "show a lesion, as in the Johnson case from March 5, 2021? Is the lipoma in doe_jo's joint?")


def _text(pdf: Path) -> str:
    return " ".join(" ".join(p.extract_text() or "" for p in PdfReader(str(pdf)).pages).split())


@pytest.fixture(scope="module")
def deid_pdf(tmp_path_factory):
    record = synthetic_record(21, question=QUESTION)
    record.warnings.append("the source /studies/DOE_JO/19610704/slice17.dcm was re-read")
    note = Override.stored(record.run_id, 1, "2025-03-16T08:00:00+00:00", "final_answer",
                           {"old": "Yes", "new": "Yes, per Jo Doe's prior of 12/01/2022", "note": "call Doe, Jo"},
                           "Dr. Ada Example")
    out = tmp_path_factory.mktemp("deid") / "deid.pdf"
    build_report(record, out, overrides=[note], patient=PATIENT, deidentify=True)
    return record, out


def test_no_identifier_survives_in_the_text(deid_pdf):
    record, pdf = deid_pdf
    text = _text(pdf)
    for secret in ("Doe ", "DOE", "Marguerite", "QX-99812", "ACC-771204", "Elsewhere", "1961", "04.07.1961",
                   "19610704", "2024-03-15", "2023-02-01", "March 5, 2021", "12/01/2022",
                   record.input.study_uid, record.input.series_uid, record.input.source_path):
        assert secret not in text, secret
    words = set(re.split(r"[^\w]+", text.replace("_", " ")))
    assert not words & {"Doe", "doe", "DOE", "Jo", "jo", "JO"}  # the name's parts, as words (two letters too)


def test_ordinary_words_are_not_mangled(deid_pdf):
    _, pdf = deid_pdf
    text = _text(pdf)
    assert "Does the bone of [removed] [removed] ([removed], born [removed], seen at [removed] on [removed])" in text
    assert "show a lesion, as in the Johnson case from [removed]?" in text
    assert "Is the lipoma in [removed]_[removed]'s joint?" in text
    assert "[removed]s" not in text and "Jo[removed]" not in text
    assert "Dr. Ada Example" in text  # the clinician is not the patient
    assert "Yes, per [removed] [removed]'s prior of [removed] (call [removed], [removed])" in text  # typed by a person


def test_metadata_and_images_carry_no_identifier(deid_pdf):
    record, pdf = deid_pdf
    reader = PdfReader(str(pdf))
    meta = " ".join(str(v) for v in dict(reader.metadata or {}).values())
    for secret in ("Doe", "DOE", "Jo ", "QX-99812", "1961", "Elsewhere", record.input.source_path):
        assert secret not in meta, secret
    assert reader.metadata.title == f"CARE evidence report {record.run_id}"
    assert "/Metadata" not in reader.trailer["/Root"]  # no XMP packet to carry anything else
    # The figure is the models' pixels with overlays, nothing drawn from the header into it.
    page = reader.pages[0]
    embedded = [np.asarray(im.image.convert("RGB")) for im in page.images]
    expected, _ = composite(record.slice_rgb, record.masks, record.evidence, record.entities.final)
    assert any(e.shape == expected.shape and np.array_equal(e, expected) for e in embedded)
    for obj in (ref.get_object() for p in reader.pages for ref in p["/Resources"].get("/XObject", {}).values()):
        assert not (set(obj.keys()) - {"/Type", "/Subtype", "/Name", "/Width", "/Height", "/BitsPerComponent",
                                       "/ColorSpace", "/Filter", "/Length", "/DecodeParms", "/SMask"}), obj.keys()


def test_scrubber_matches_whole_tokens_only():
    s = Scrubber(PatientInfo(name="LI^XI^A", patient_id="77", accession="A1"), True)
    assert s("Li Xi: LI-RADS 4, lipoma near the xiphoid; Lin and Xia are others") == \
        "[removed] [removed]: [removed]-RADS 4, lipoma near the xiphoid; Lin and Xia are others"
    assert s("a mass of 77 mm, 770 mm, A1 segment, A12") == "a mass of [removed] mm, 770 mm, [removed] segment, A12"
    assert s("A is a one-letter initial") == "A is a one-letter initial"
    assert Scrubber(PatientInfo(name="DOE^JOHN"), False)("John Doe") == "John Doe"  # off: unchanged


def test_birth_date_in_every_common_spelling():
    spellings = date_spellings("19610704")
    for form in ("19610704", "1961-07-04", "1961/07/04", "04.07.1961", "4.7.1961", "04/07/1961", "07/04/1961",
                 "7/4/1961", "04.07.61", "4 July 1961", "July 4, 1961", "4 Jul 1961", "04-Jul-1961"):
        assert form.lower() in spellings, form
    s = Scrubber(PatientInfo(birth_date="19610704"), True)
    assert s("born 4 july 1961, not 14 July 1961 nor 1961-07-041") == \
        "born [removed], not 14 July 1961 nor 1961-07-041"
    assert s.typed("seen 14 July 1961 and 2/3/2020; 1.5 cm, 3/4 of the lobe") == \
        "seen [removed] and [removed]; 1.5 cm, 3/4 of the lobe"
    assert date_spellings("") == set() and date_spellings("2024") == set() and date_spellings("20241399") == set()
