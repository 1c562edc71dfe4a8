"""The run record: everything one CARE question did, as a typed dataclass tree.

This is the audit contract. The audit store, the PDF report, the UI and the coordinator all
read it, so fields are only ever *added* (bump ``SCHEMA_VERSION`` when a field's meaning
changes). ``RunRecord.to_dict()`` / ``RunRecord.from_dict()`` round-trip exactly through JSON.

Arrays (masks, evidence images) are never inlined: they live on the record in memory
(fields marked ``transient``, excluded from the dict and from equality) and
:mod:`app.pipeline.run_io` writes them as PNGs beside ``run.json`` under the file names the
record carries.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from app.pipeline.record_json import decode, encode
from app.pipeline.vocab import (
    AnswerKind,
    ConfidenceGate,
    CoordEventKind,
    CropChoice,
    CropUnit,
    DecisionSource,
    EntitySource,
    Mode,
    OffloadPlan,
    OverrideKind,
    ProfileWeights,
    PromptType,
    ReGroundAction,
    ReviewAction,
    Role,
    RunStatus,
    TieBreak,
)

from .study_record import StudyScope
from .types import EvidenceType, ModelInfo, Stage

SCHEMA_VERSION = 1

# Kept for importers outside the pipeline core (audit, UI); new code uses RunStatus.
STATUS_RUNNING = RunStatus.RUNNING
STATUS_COMPLETED = RunStatus.COMPLETED
STATUS_CANCELLED = RunStatus.CANCELLED
STATUS_FAILED = RunStatus.FAILED


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _transient(default: Any = None) -> Any:
    """An in-memory only field (numpy arrays): not serialised, not compared."""
    return field(default=default, compare=False, repr=False, metadata={"transient": True})


def _transient_list() -> Any:
    return field(default_factory=list, compare=False, repr=False, metadata={"transient": True})


# --------------------------------------------------------------------------------------
# Record tree
# --------------------------------------------------------------------------------------
@dataclass
class InputInfo:
    study_uid: str = ""
    series_uid: str = ""
    slice_index: int = 0
    num_slices: int = 1
    modality: str = ""
    window: dict[str, Any] = field(default_factory=dict)  # Window.to_dict()
    # sha256 of the slice's modality pixels (C order, dtype below): proves which pixels were read.
    pixel_sha256: str = ""
    pixel_dtype: str = ""
    image_size: tuple[int, int] = (0, 0)  # (width, height) in pixels
    source_path: str = ""
    # The display frame: every image, box and mask of the run is in the orientation the
    # radiologist sees (app.study.display_frame), whatever the file's storage order.
    plane: str = ""  # "axial" | "coronal" | "sagittal" | "projection" | "image" (edge_labels.plane_name)
    temporal: bool = False  # the series is frames over time (cine), not a spatial stack
    edge_labels: dict[str, str] = field(default_factory=dict)  # left/right/top/bottom letters; {} = unknown
    pixel_spacing: tuple[float, float] | None = None  # mm per image column, row; None = no calibration
    # The clinician's drawn boxes (display frame, x1/y1 exclusive) as given to the run.
    clinician_boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    # Where the modality came from (app.study.volume.ModalitySource value: "header",
    # "detected from HU range", "none") and the detected one ("CT"); modality stays the file's.
    modality_source: str = ""
    modality_hint: str = ""


@dataclass
class ModelCall:
    """One model invocation: the prompt as written, as templated, and the raw output."""

    stage: Stage
    role: Role  # entity | vqa | coordinator
    prompt: str
    system: str | None = None
    prompt_text: str = ""  # the fully templated prompt the backend actually sent
    image_files: list[str] = field(default_factory=list)
    evidence: EvidenceType | None = None
    raw_output: str = ""
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # Which prefill ran: N > 0, the first N prompt tokens (system, slice, question) were prefilled
    # once for the whole batch and shared with its other calls; 0, this call's prompt was prefilled
    # on its own; None, the backend does not say (remote, or a record from before it was kept).
    shared_prefix_tokens: int | None = None
    # Why ``tokens`` do not cover ``raw_output`` (remote replies whose tokens could not be matched
    # to their text, or specials a server left out of the text): "" when they do.
    tokens_note: str = ""


@dataclass
class Entity:
    name: str
    box: tuple[int, int, int, int] | None = None  # slice pixels (x0, y0, x1, y1), x1/y1 exclusive
    source: EntitySource = EntitySource.PROPOSED  # stage-1 VLM, or a clinician's drawn box


@dataclass
class EntityMerge:
    """Names the de-duplication folded into ``kept`` (MiniLM cosine similarity)."""

    kept: str
    merged: list[str] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)


@dataclass
class EntityStage:
    proposed: list[Entity] = field(default_factory=list)
    merges: list[EntityMerge] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)  # by the clinician, before segmentation
    final: list[Entity] = field(default_factory=list)
    format_violations: list[str] = field(default_factory=list)


@dataclass
class MaskRecord:
    entity: str
    backend: str
    prompt_type: PromptType
    box: tuple[int, int, int, int] | None = None
    confidence: float = 0.0  # C = 1 - H / log 2 as confidence_gate defines it (the value compared with tau)
    accepted: bool = False
    tau: float = 0.7
    area_px: int = 0
    bbox: tuple[int, int, int, int] | None = None  # of the binarised mask, same convention as box
    prob_stats: dict[str, float] = field(default_factory=dict)
    png: str = ""  # file name beside run.json
    seconds: float = 0.0
    mask: np.ndarray | None = _transient()  # (H, W) bool
    # Both definitions (app.pipeline.segmentation.confidence); None in records written before them.
    confidence_paper: float | None = None  # H averaged over the whole probability map
    confidence_roi: float | None = None  # H averaged over the mask's bbox + 10 %
    confidence_gate: ConfidenceGate = ConfidenceGate.ROI
    object_score: float | None = None  # the segmenter's own score: LiteMedSAM IoU head, SAM3 presence
    object_score_kind: str = ""  # "iou_head" | "presence"
    min_object_score: float = 0.0  # > 0: object_score had to reach it too


@dataclass
class EvidenceItem:
    type: EvidenceType
    # Crop rectangle in slice pixels (x0, y0, x1, y1), x1/y1 exclusive; None unless type is crop.
    crop_rect: tuple[int, int, int, int] | None = None
    image_files: list[str] = field(default_factory=list)  # one per model image input, in order
    # When no mask was accepted crop/mask evidence degrade to the global image; this says so.
    fallback: str | None = None
    entities: list[str] = field(default_factory=list)  # accepted masks this evidence was built from
    images: list[np.ndarray] = _transient_list()  # (H, W, 3) uint8 RGB, model input order
    ones_mask: bool = False  # global evidence (or a fallback to it) in the paper's form: Image-2 all ones
    crop_entity: str = ""  # crop only: the one accepted mask it is around, why that one, its size
    crop_choice: CropChoice | None = None
    crop_confidence: float | None = None  # C of that mask
    crop_mm: tuple[float, float] | None = None  # crop_rect's (width, height) in mm; None = uncalibrated
    crop_square_in: CropUnit | None = None  # mm on a calibrated image, else pixels
    crop_margin: float | None = None  # added on each side, as a fraction of the mask's larger side


@dataclass
class Answer:
    evidence: EvidenceType
    call_index: int  # index into RunRecord.calls
    think: str = ""
    answer: str = ""
    normalized: str = ""
    format_violations: list[str] = field(default_factory=list)
    answer_token_span: tuple[int, int] | None = None  # [start, end) into the call's tokens
    mean_answer_prob: float | None = None  # exp(mean log-prob of the answer tokens)
    # Index into RunRecord.answers of the row whose model call this one shares: its prompt and
    # images were identical, so it was asked once (call_index is that row's) and votes once.
    same_input_as: int | None = None
    fell_back: bool = False  # crop/mask evidence fell back to the global image (asked as global)


@dataclass
class Vote:
    evidence: EvidenceType
    raw_answer: str
    normalized: str
    mean_prob: float | None
    same_input_as: EvidenceType | None = None  # not counted: the same input as this counted pass
    fell_back: bool = False


@dataclass
class VoteResult:
    votes: list[Vote] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # normalised answer -> votes
    winner: str = ""  # normalised
    winner_raw: str = ""  # the raw answer of the winning vote with the highest probability
    tied: list[str] = field(default_factory=list)  # candidates tied on count, if any
    tie_break: TieBreak = TieBreak.NONE
    detail: str = ""
    independent_passes: int = 0  # distinct model inputs the vote counted; 0: not recorded (older runs)
    normalisation: AnswerKind | None = None  # how the answers were normalised (None: not recorded)


@dataclass
class StageTiming:
    stage: Stage
    seconds: float  # wall time of the stage
    started: str = ""
    model_seconds: float = 0.0  # of which inside model calls (the rest is pipeline overhead)


@dataclass(frozen=True)
class Override:
    """A clinician change made after the run: the one override type of the record, the audit
    store (one ``overrides`` row each) and everything that shows them.

    ``kind``/``detail``/``seq``/``run_id`` come from the audit store's row and are not written
    to run.json (``transient``), so a record's JSON keeps the six fields it always had.
    """

    time: str
    author: str = ""
    target: str = ""  # e.g. "final_answer", "masks[2]"
    old: str = ""
    new: str = ""
    note: str = ""
    kind: OverrideKind | str = field(default="", metadata={"transient": True})
    detail: dict[str, Any] = field(default_factory=dict, metadata={"transient": True})
    seq: int = field(default=0, metadata={"transient": True})
    run_id: str = field(default="", metadata={"transient": True})

    @property
    def who(self) -> str:
        """The audit store's name for ``author``."""
        return self.author

    @classmethod
    def stored(cls, run_id: str, seq: int, time: str, kind: str, detail: dict[str, Any] | None = None,
               who: str = "") -> "Override":
        """An audit-store row (``kind`` + free ``detail``) as an Override; target/old/new/note
        come from the detail (the target defaults to the kind)."""
        d = dict(detail or {})
        return cls(time=time, author=who, target=str(d.get("target", kind)), old=_override_text(d.get("old", "")),
                   new=_override_text(d.get("new", "")), note=_override_text(d.get("note", "")),
                   kind=cls._kind(kind), detail=d, seq=int(seq), run_id=run_id)

    @staticmethod
    def _kind(kind: str) -> OverrideKind | str:
        # Rows are never rewritten, so a kind this version does not know is shown as stored.
        try:
            return OverrideKind(kind)
        except ValueError:
            return kind


def _override_text(value: Any) -> str:
    """Override values are shown as text; the store's detail may hold JSON values (False, 3)."""
    import json

    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# ----- CARE-Coord timeline (app.pipeline.coordinator writes these) ---------------------
@dataclass
class CoordPlan:
    """Which evidence the coordinator chose to run first, and why."""

    evidence: list[EvidenceType] = field(default_factory=list)
    rationale: str = ""
    images_sent: bool = False  # did the coordinator see the slice (False: text only)


@dataclass
class CoordRound:
    """One batch of evidence-grounded VQA the coordinator ran (round 0 is the planned one)."""

    round: int
    evidence: list[EvidenceType] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)  # masks the evidence was built from
    crop_margin: float | None = None  # set when a crop used a non-default margin
    answer_indices: list[int] = field(default_factory=list)  # into RunRecord.answers
    reason: str = ""  # "plan" | "re-ground: ..." | "review asked: ..."


@dataclass
class CoordJudgement:
    """The review's verdict on one candidate answer."""

    candidate: str  # candidate id, e.g. "A2" (= RunRecord.answers[1])
    cot_supports_answer: bool = False
    addresses_question: bool = False
    note: str = ""


@dataclass
class CoordReview:
    round: int
    judgements: list[CoordJudgement] = field(default_factory=list)
    action: ReviewAction = ReviewAction.UNSET
    candidate: str = ""  # the candidate accepted or chosen
    final_answer: str = ""  # what the review proposes as the answer
    rests_on: list[str] = field(default_factory=list)  # candidate ids the answer rests on
    rationale: str = ""
    next_evidence: list[EvidenceType] = field(default_factory=list)
    next_entities: list[str] = field(default_factory=list)
    images_sent: bool = False
    finding: str = ""  # a disagreement with the experts that was recorded, not applied (may_revise off)


@dataclass
class CoordReGround:
    """An uncertainty-triggered re-grounding (MedVR-style), decided before the review."""

    round: int  # the round whose answers triggered it
    uncertainty: float | None  # -mean log-prob of the answer tokens (see coordinator.uncertainty)
    threshold: float
    candidates: list[str] = field(default_factory=list)  # the answers the uncertainty was taken over
    action: ReGroundAction = ReGroundAction.UNSET
    evidence: list[EvidenceType] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    crop_margin: float | None = None
    reason: str = ""


@dataclass
class CoordDecision:
    """How the run's final answer was decided, and whether it differs from the expert vote."""

    final_answer: str = ""
    source: DecisionSource = DecisionSource.UNSET  # vote: coordinator failed/silent, the CARE-Flow answer
    candidate: str = ""
    rests_on: list[str] = field(default_factory=list)
    vote_answer: str = ""  # the experts' majority-vote answer (raw wording)
    changed_vote: bool = False  # final answer differs from the vote answer (after normalisation)
    extra_rounds: int = 0
    failure: str = ""  # why the coordinator could not decide, when it could not
    proposed_answer: str = ""  # the review's different answer, kept out of final_answer (may_revise off)


@dataclass
class CoordSettings:
    """The coordinator options a CARE-Coord run ran with (the audit says which were on)."""

    may_revise: bool = False  # may the review replace the experts' vote answer
    reground: bool = False  # entropy-guided re-grounding: a heuristic after MedVR, not part of CARE
    uncertainty_threshold: float = 0.4
    max_extra_rounds: int = 2


@dataclass
class CoordinatorEvent:
    """One step of a CARE-Coord timeline (plan / round / re-ground / review / failure / decision).

    ``kind`` says which of the typed payloads is set; ``detail`` holds anything extra.
    """

    time: str
    kind: CoordEventKind
    detail: dict[str, Any] = field(default_factory=dict)
    call_index: int | None = None  # the coordinator's ModelCall in RunRecord.calls, if any
    plan: CoordPlan | None = None
    round: CoordRound | None = None
    reground: CoordReGround | None = None
    review: CoordReview | None = None
    decision: CoordDecision | None = None
    error: str = ""


@dataclass
class RunRecord:
    question: str
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    schema_version: int = SCHEMA_VERSION
    app_version: str = ""
    created: str = field(default_factory=utc_now)
    finished: str = ""
    status: RunStatus = RunStatus.RUNNING
    mode: Mode = Mode.FLOW
    profile: str = ""
    # What the profile's weights were, and the disclosure line shown for them (app.pipeline.disclosure);
    # None / "" in a record written before these fields existed: shown as "not recorded".
    profile_weights: ProfileWeights | None = None
    weights_disclosure: str = ""
    tau: float = 0.7
    prompt_version: str = ""
    input: InputInfo = field(default_factory=InputInfo)
    models: dict[str, ModelInfo] = field(default_factory=dict)  # role -> provenance
    calls: list[ModelCall] = field(default_factory=list)
    entities: EntityStage = field(default_factory=EntityStage)
    masks: list[MaskRecord] = field(default_factory=list)
    evidence: list[EvidenceItem] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    vote: VoteResult | None = None
    final_answer: str = ""
    timings: list[StageTiming] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    coordinator: list[CoordinatorEvent] = field(default_factory=list)
    coordinator_decision: CoordDecision | None = None  # CARE-Coord runs only
    coordinator_settings: CoordSettings | None = None  # CARE-Coord runs only
    # Template-token-like pieces of the question (``<|im_start|>``, ``<img>``, ...) that every
    # prompt wrote as literal text (app.pipeline.prompt_safety); ``question`` stays verbatim.
    question_literal_tokens: list[str] = field(default_factory=list)
    # Which GPU offload plan ran (app.pipeline.backends.offload) and the free-VRAM numbers it came
    # from; None in a record written before the field existed.
    offload_plan: OffloadPlan | None = None
    offload_reason: str = ""
    study: StudyScope | None = None  # study-scope runs only (app.pipeline.study_record)
    slice_rgb: np.ndarray | None = _transient()  # windowed model input (H, W, 3) uint8

    # ----- conveniences ------------------------------------------------------------
    @property
    def accepted_masks(self) -> list[MaskRecord]:
        return [m for m in self.masks if m.accepted]

    def timing(self, stage: Stage) -> float:
        return sum(t.seconds for t in self.timings if t.stage == stage)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    # ----- JSON --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return encode(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        version = int(data.get("schema_version", 0))
        if version > SCHEMA_VERSION:
            raise ValueError(f"run record schema {version} is newer than this app understands ({SCHEMA_VERSION})")
        return decode(cls, data)
