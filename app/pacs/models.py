"""What a PACS query asks and answers, and what a retrieve / store / echo reports."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

_DATE = r"(\d{4}-?\d{2}-?\d{2})"


def _parse_date(text: str) -> dt.date:
    digits = text.replace("-", "")
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise ValueError(f"not a valid date: {text!r}") from None


def parse_date_range(text: str) -> tuple[dt.date | None, dt.date | None]:
    """``FROM-TO`` as the CLI takes it: DICOM ``YYYYMMDD-YYYYMMDD`` or ISO ``YYYY-MM-DD-YYYY-MM-DD``;
    either end may be left open (``20200101-``, ``-20201231``); one date alone is that day."""
    text = text.strip()
    if re.fullmatch(_DATE, text):
        d = _parse_date(text)
        return d, d
    m = re.fullmatch(_DATE + r"?-" + _DATE + "?", text)
    if not m or not (m.group(1) or m.group(2)):
        raise ValueError(f"expected a date range FROM-TO such as 20200101-20201231 or 2020-01-01-2020-12-31, got {text!r}")
    lo = _parse_date(m.group(1)) if m.group(1) else None
    hi = _parse_date(m.group(2)) if m.group(2) else None
    if lo and hi and lo > hi:
        raise ValueError(f"date range {text!r} ends before it starts")
    return lo, hi


@dataclass(frozen=True)
class QueryFilter:
    """Study-level matching keys; empty means "any". Names and IDs take DICOM wildcards (* and ?)."""

    patient_id: str = ""
    patient_name: str = ""
    accession: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    modality: str = ""

    def dicom_date(self) -> str:
        """The StudyDate matching value: ``YYYYMMDD-YYYYMMDD`` (an end may be open), or ""."""
        if not (self.date_from or self.date_to):
            return ""
        lo = self.date_from.strftime("%Y%m%d") if self.date_from else ""
        hi = self.date_to.strftime("%Y%m%d") if self.date_to else ""
        return lo if lo == hi else f"{lo}-{hi}"

    def keys(self) -> dict[str, str]:
        """DICOM keyword -> matching value, only the keys that constrain the query."""
        keys = {"PatientID": self.patient_id, "PatientName": self.patient_name,
                "AccessionNumber": self.accession, "StudyDate": self.dicom_date(),
                "ModalitiesInStudy": self.modality.upper()}
        return {k: v for k, v in keys.items() if v}


@dataclass(frozen=True)
class StudyMatch:
    study_uid: str
    patient_id: str
    patient_name: str  # DICOM PN as stored, e.g. "DOE^JANE"
    study_date: str  # YYYYMMDD as stored ("" when absent)
    accession: str
    modalities: tuple[str, ...]
    description: str
    n_series: int | None
    n_instances: int | None

    def as_json(self) -> dict:
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        return d


@dataclass(frozen=True)
class SeriesMatch:
    study_uid: str
    series_uid: str
    modality: str
    number: int | None
    description: str
    n_instances: int | None

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class InstanceRef:
    """One instance to fetch (from an IMAGE-level query)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    number: int | None = None


@dataclass(frozen=True)
class RetrieveProgress:
    done: int  # instances finished (written, already present or failed)
    total: int
    current_sop_uid: str


@dataclass
class RetrieveResult:
    out_dir: Path
    written: list[Path] = field(default_factory=list)
    already_present: int = 0
    failed: list[str] = field(default_factory=list)  # SOP Instance UIDs not retrieved
    complete: bool = False
    total: int = 0
    cancelled: bool = False
    error: str = ""  # one line: why some instances failed or the retrieve stopped ("" when none did)

    @property
    def kept(self) -> int:
        """Instances now in out_dir for this request (written now or before)."""
        return len(self.written) + self.already_present


@dataclass
class StoreResult:
    stored: list[str] = field(default_factory=list)  # SOP Instance UIDs the node accepted
    failed: list[tuple[str, str]] = field(default_factory=list)  # (SOP Instance UID, reason)


@dataclass(frozen=True)
class EchoResult:
    ok: bool
    message: str
    seconds: float
