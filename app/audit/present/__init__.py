"""How a run is shown: one presentation (typed rows of finished strings) computed from a
RunRecord, which the audit panel, the PDF report and the terminal only lay out. No Qt, no
reportlab here."""
from .build import ANSWER_CHARS, NAME_CHARS, build_presentation, mask_row, mode_label, scope_text
from .overrides import override_rows, override_sentence
from .formatting import (
    breakable, elide, elide_name, fmt_dicom_date, fmt_local_minute, fmt_person_name, fmt_prob, fmt_prob3, fmt_time,
    sentence, short_hash, short_hashes, tail,
)
from .model import (
    AnswerRow, Coordinator, Entities, EntityRow, EvidenceRow, Header, MaskRow, ModelRow, OverrideRow,
    RunPresentation, TimelineRow, TimingRow, VoteRow, VoteSummary,
)
from .texts import DEIDENTIFIED, DISCLAIMER, EVIDENCE_LABELS, EVIDENCE_TITLES, REPORT_TITLE

__all__ = [
    "ANSWER_CHARS", "NAME_CHARS", "build_presentation", "mask_row", "mode_label", "scope_text", "override_rows",
    "override_sentence",
    "breakable", "elide", "elide_name", "fmt_dicom_date", "fmt_local_minute", "fmt_person_name", "fmt_prob",
    "fmt_prob3", "fmt_time", "sentence", "short_hash", "short_hashes", "tail",
    "AnswerRow", "Coordinator", "Entities", "EntityRow", "EvidenceRow", "Header", "MaskRow", "ModelRow",
    "OverrideRow", "RunPresentation", "TimelineRow", "TimingRow", "VoteRow", "VoteSummary",
    "DEIDENTIFIED", "DISCLAIMER", "EVIDENCE_LABELS", "EVIDENCE_TITLES", "REPORT_TITLE",
]
