"""The presentation of one run: typed, frozen rows of finished strings.

Computed once from a RunRecord (:func:`app.audit.present.build_presentation`); the audit
panel, the PDF report and the terminal summary lay these out and add no wording of their own
beyond fixed captions. Numbers a renderer draws (a confidence bar) stay numbers too.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.pipeline.types import EvidenceType

from .study_model import StudyView


@dataclass(frozen=True)
class Header:
    title: str  # the report's title
    subtitle: str  # run id, mode, profile, status, time (report)
    status: str  # RunStatus value
    status_label: str  # "Answered", "Cancelled", ...
    severity: str  # "ok" | "warn" | "error" | "neutral"
    mode_label: str  # "CARE-Flow" | "CARE-Coord"
    profile: str
    created: str  # formatted
    finished: str  # formatted
    slice_text: str  # "slice 18/48"
    run_short: str
    question: str
    answer: str  # the final answer, whitespace folded ("" when none)
    answer_short: str  # elided for a header line
    answer_missing: str  # why there is no answer (panel), "" when there is one
    answer_missing_severity: str
    answer_how: str  # "CARE-Flow majority vote" | "CARE-Coord final answer"
    answer_or_status: str  # the report's answer box text
    agreement: str  # "2 of 3 independent passes agree" ("" without a winner)
    # Why the status is not a plain "Answered" (shown after status_label): "the coordinator
    # failed (...); the answer is the CARE-Flow majority vote" ("" otherwise).
    status_reason: str = ""
    scope: str = ""  # what the answer rests on: "about axial slice 34/61 only"


@dataclass(frozen=True)
class EntityRow:
    name: str
    label: str  # list text: elided name, "(your box)", the box
    clinician: bool
    mask_index: int | None  # the mask segmented for it, if any


@dataclass(frozen=True)
class Entities:
    rows: tuple[EntityRow, ...]
    merge_lines: tuple[str, ...]  # panel list: "↳ “a” merged into “b” (cosine 0.91)"
    discarded_lines: tuple[str, ...]
    proposed: str  # "a, b" ("" when none)
    format_problems: str  # "; "-joined
    notes: tuple[str, ...]  # the report's sentences below the mask table
    count: int


@dataclass(frozen=True)
class MaskRow:
    index: int
    entity: str
    short_name: str
    backend: str
    prompt_type: str
    route: str  # "litemedsam · box prompt · 1373 px"
    confidence: float
    tau: float
    accepted: bool
    confidence_text: str  # 2 decimals
    confidence_tip: str
    state_text: str  # panel: "accepted (≥ τ 0.70)" | "below τ 0.70"
    decision: str  # report: "accepted (≥ 0.70)" | "discarded (< 0.70)"
    verdict: str  # terminal: "accepted" | "rejected (tau 0.70)"
    area_px: int
    area_text: str
    bbox_text: str
    colour_index: int
    # "C_roi 0.84 (gates τ) · C_paper 0.99 · IoU head 0.91 (recorded, not gating)"; "" for old records
    confidences_text: str = ""


@dataclass(frozen=True)
class EvidenceRow:
    index: int
    type: EvidenceType
    title: str
    crop_text: str  # "Crop x 10–20, y 5–15 (10×10 px)" ("" unless a crop was used)
    description: str  # what the model saw, for mask / global evidence
    entities_text: str  # "From: a, b" ("" when none)
    fallback_text: str
    inputs_text: str
    crop_rect: tuple[int, int, int, int] | None
    entities: tuple[str, ...]


@dataclass(frozen=True)
class AnswerRow:
    evidence: EvidenceType
    title: str  # panel section title (elided answer, winner mark)
    heading: str  # report: "Evidence 1: zoom-in crop"
    answer: str  # folded, "(no answer)" when empty
    think: str  # folded, "" when none
    mean_prob_text: str  # panel: "Mean answer-token probability 0.873" ("" when unknown)
    format_text: str
    facts: tuple[tuple[str, str], ...]  # report's fact table
    think_report: str
    raw_output: str  # shown in the report when the answer broke the format ("" otherwise)
    winner: bool


@dataclass(frozen=True)
class VoteRow:
    evidence: EvidenceType
    evidence_label: str
    raw_answer: str
    cell: str  # panel vote cell (elided, ✔ for the winner)
    tip: str
    normalized: str
    prob3: str
    prob2: str
    terminal: str  # "  crop    'Yes'   p=0.873"
    winner: bool
    counted: bool = True  # False: the same input as another pass, asked once and counted there
    counted_text: str = ""  # report column: "yes" | "no" | "no: same input as global image"


@dataclass(frozen=True)
class VoteSummary:
    rows: tuple[VoteRow, ...]
    winner_text: str  # elided winning answer, "(none)"
    winner_count: str  # " (2 of 3 votes)"
    tie_rule: str  # "" without a tie-break
    detail: str  # the vote's detail line, as recorded
    detail_short: str
    counts_line: str  # report: "Counts: “yes”: 2. Winner: yes. ..." (+ the detail)
    passes_text: str = ""  # "1 independent pass (crop and mask fell back ...)" ("" for older records)
    counts_text: str = ""  # counts_line without the detail (the report clips the counts, never the detail)


@dataclass(frozen=True)
class TimelineRow:
    time: str
    kind: str
    summary: str  # one line from the typed payload (panel)
    detail_json: str  # the event's detail as JSON (report)


@dataclass(frozen=True)
class Coordinator:
    rows: tuple[TimelineRow, ...]
    decision_by: str  # "the review" | "the CARE-Flow vote" ("" without a decision)
    decision_answer: str
    decision_changed: str | None  # the vote answer it differs from (None when the same)
    decision_failure: str
    terminal_lines: tuple[str, ...]  # the terminal's shorter timeline
    empty_text: str  # report text without events
    options_text: str = ""  # which coordinator options were on ("" when the record does not say)
    finding: str = ""  # the coordinator's disagreement, recorded but not applied (may_revise off)


@dataclass(frozen=True)
class ModelRow:
    role: str
    backend: str
    repo_id: str
    revision_short: str  # panel (short_hash: 12 chars and an ellipsis, or "local")
    revision: str  # report (12 chars or "-")
    sha_short: str  # short_hash of the weights sha256 ("" when unknown)
    device: str
    dtype: str
    sha256: str = ""  # the full weights sha256 (the panel's tooltip)


@dataclass(frozen=True)
class TimingRow:
    stage: str
    started: str
    seconds: str
    model_seconds: str
    overhead: str


@dataclass(frozen=True)
class OverrideRow:
    time: str
    who: str
    kind: str  # the store's kind, else the target
    target: str
    old: str
    new: str
    note: str
    change: str  # "old → new" ("" when neither)
    final_answer: bool
    sentence: str = ""  # plain words: "you discarded mask 1 (right lung, C 0.78)"


@dataclass(frozen=True)
class RunPresentation:
    header: Header
    disclaimer: str
    input_text: str  # panel provenance line
    window_text: str
    entities: Entities
    masks: tuple[MaskRow, ...]
    mask_note: str
    evidence: tuple[EvidenceRow, ...]
    answers: tuple[AnswerRow, ...]
    vote: VoteSummary | None
    coordinator: Coordinator
    models: tuple[ModelRow, ...]
    versions_text: str
    timings: tuple[TimingRow, ...]
    timings_text: str  # panel: "entities 1.00 s · ... (total ..., of which models ...)" ("" when none)
    total_seconds: float
    warnings: tuple[str, ...]
    errors: tuple[str, ...]
    overrides: tuple[OverrideRow, ...]
    terminal_head: tuple[str, ...]  # the terminal summary's first lines (run, slice, question)
    # "Profile care-paper weights: CARE pipeline with off-the-shelf base models (...)" as recorded
    # (app.pipeline.disclosure); "... weights: not recorded" for a record older than the field.
    weights_text: str = ""
    study: StudyView | None = None  # study-scope runs only (app.audit.present.study)
    pixel_sha256: str = ""  # in full (input_text shows it short; the panel's tooltip in full)
