"""De-identification of the report's free text: the header's identifiers as whole tokens.

A value is removed only where it stands as a whole token (not preceded or followed by a letter
or digit), case-insensitively, so the name DOE^JOHN removes "Doe" and "john" but leaves "Does"
and "Johnson" intact, and a two-letter name part is removed as a word without mangling words
that contain it. Dates are matched in every common spelling; text a clinician typed (the
question, override notes) additionally loses any date at all.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Iterable

from app.study.volume import PatientInfo

REMOVED = "[removed]"

# Not an identifier on its own, and removing it would mangle ordinary text.
_NAME_NOISE = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "jr", "sr", "ii", "iii", "iv", "md", "phd"})
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_MONTH_RE = "(?:" + "|".join(f"{m[:3]}(?:{m[3:]})?\\.?" if len(m) > 3 else m for m in _MONTHS) + "|sept\\.?)"
_ORD = r"(?:st|nd|rd|th)?"
# A token boundary: no letter or digit on either side ("_" and punctuation separate tokens, so a
# folder named DOE_JOHN still loses both parts).
_L, _R = r"(?<![^\W_])", r"(?![^\W_])"

# Any date (typed text only): numeric Y-M-D / D-M-Y / M-D-Y with one separator, compact YYYYMMDD,
# and spelled months with a day and/or year.
_ANY_DATE = re.compile(
    _L + "(?:"
    r"(?:19|20)\d\d([-/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])([-/.])(?:0?[1-9]|[12]\d|3[01])\2(?:(?:19|20)\d\d|\d\d)"
    r"|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    rf"|(?:0?[1-9]|[12]\d|3[01]){_ORD}[\s-]+(?:of\s+)?{_MONTH_RE}(?:[\s,-]+(?:19|20)\d\d)?"
    rf"|{_MONTH_RE}[\s-]+(?:0?[1-9]|[12]\d|3[01]){_ORD}(?:,?[\s-]+(?:19|20)\d\d)?"
    rf"|{_MONTH_RE}[\s,-]+(?:19|20)\d\d"
    ")" + _R,
    re.I,
)


def date_spellings(value: str) -> set[str]:
    """The common spellings of a DICOM date (YYYYMMDD, or already dashed); empty if not a date."""
    digits = re.sub(r"\D", "", value or "")
    if len(digits) != 8:
        return set()
    try:
        d = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return set()
    y, yy = f"{d.year:04d}", f"{d.year % 100:02d}"
    out = {digits}
    for m, dd in ((f"{d.month:02d}", f"{d.day:02d}"), (str(d.month), str(d.day))):
        for sep in "-/.":
            out |= {f"{y}{sep}{m}{sep}{dd}", f"{dd}{sep}{m}{sep}{y}", f"{m}{sep}{dd}{sep}{y}",
                    f"{dd}{sep}{m}{sep}{yy}", f"{m}{sep}{dd}{sep}{yy}"}
    month = _MONTHS[d.month - 1]
    for name in {month, month[:3]}:
        for day in {str(d.day), f"{d.day:02d}"}:
            out |= {f"{day} {name} {y}", f"{day}-{name}-{y}", f"{name} {day}, {y}", f"{name} {day} {y}"}
    return out


def _name_parts(name: str) -> set[str]:
    parts = {p for p in re.split(r"[\^=,\s]+", name or "") if p}
    # A one-letter initial removed as a word would take every "a" and "I" with it.
    return {p for p in parts if len(p) >= 2 and p.lower().strip(".") not in _NAME_NOISE}


def _pattern(value: str) -> str:
    # Whitespace in a value matches any run of whitespace (a name wrapped in the question).
    return r"\s+".join(re.escape(w) for w in value.split())


class Scrubber:
    """Removes the patient's identifiers wherever free text repeats them (de-identified mode):
    a clinician may type the patient's name or birth date into the question, and a file path
    or a warning may carry the name. Off, it returns text unchanged."""

    def __init__(self, patient: PatientInfo | None, on: bool, extra: Iterable[str] = ()) -> None:
        self.on = on
        tokens: set[str] = set()
        if on:
            if patient is not None:
                tokens |= _name_parts(patient.name)
                for value in (patient.patient_id, patient.accession, patient.institution, patient.name):
                    if value and len(value.strip()) >= 2:
                        tokens.add(value.strip())
                for value in (patient.birth_date, patient.study_date):
                    tokens |= date_spellings(value)
            tokens |= {v.strip() for v in extra if v and len(v.strip()) >= 2}
        tokens = {t for t in tokens if t.strip()}
        alternatives = "|".join(_pattern(t) for t in sorted(tokens, key=len, reverse=True))
        self._re = re.compile(f"{_L}(?:{alternatives}){_R}", re.I) if tokens else None

    def __call__(self, text: str) -> str:
        return self._re.sub(REMOVED, text) if self._re is not None else text

    def typed(self, text: str) -> str:
        """Text a person typed: the identifiers, and any date."""
        text = self(text)
        return _ANY_DATE.sub(REMOVED, text) if self.on else text
