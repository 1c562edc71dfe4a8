"""The closed vocabularies of a run, as enums (no Qt, no torch).

Every value is a ``str`` enum whose value is exactly the string run.json, the audit store and
profiles.toml have always carried, so ``json.dumps`` and equality with plain strings are
unchanged (``RunStatus.COMPLETED == "completed"``). Strings are coerced to these enums at the
boundary (profile loading, record decoding, CLI arguments) with :func:`coerce`, which names the
field and the allowed values when a string is not one of them.
"""
from __future__ import annotations

import enum
from typing import TypeVar

E = TypeVar("E", bound=enum.Enum)


class _StrEnum(str, enum.Enum):
    def __str__(self) -> str:  # f"{RunStatus.COMPLETED}" -> "completed", as the plain string did
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __repr__(self) -> str:  # messages written with {x!r} read 'sam3', as the plain string did
        return repr(str(self.value))


class RunStatus(_StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # audit store only: started, never finished, its process is gone


class Mode(_StrEnum):
    FLOW = "flow"  # CARE-Flow: every evidence type, majority vote
    COORD = "coord"  # CARE-Coord: a coordinator plans, reviews, may re-ground


class Role(_StrEnum):
    ENTITY = "entity"
    SEGMENTER = "segmenter"
    BOX_SEGMENTER = "box_segmenter"
    VQA = "vqa"
    COORDINATOR = "coordinator"
    ENCODER = "encoder"  # MiniLM entity de-duplication (not a profile role)


class BackendKind(_StrEnum):
    INTERNVL = "internvl"
    SAM3 = "sam3"
    LITEMEDSAM = "litemedsam"
    REMOTE = "remote"
    MINILM = "minilm"


class ProfileWeights(_StrEnum):
    """What a profile's expert weights are (``weights = "..."`` in profiles.toml): the honest label
    every place that names a profile shows (app.pipeline.disclosure)."""

    BASE = "base"  # off-the-shelf public checkpoints (InternVL3-*-hf, SAM3, LiteMedSAM)
    PAPER = "paper"  # the CARE paper's trained experts (not published yet)
    RANDOM_TEST = "random-test"  # random-initialised tiny checkpoints (tests only)
    REMOTE = "remote"  # served by an endpoint: which weights it runs is the server's
    UNDECLARED = "undeclared"  # a manifest written before the field existed


class EntitySource(_StrEnum):
    PROPOSED = "proposed"  # stage-1 VLM
    CLINICIAN = "clinician"  # a drawn box
    LOCALISED = "localised"  # study scope: a box found on this slice by localising across the volume


class PromptType(_StrEnum):
    TEXT = "text"
    BOX = "box"


class ConfidenceGate(_StrEnum):
    """Which mask confidence is compared with tau (app.pipeline.segmentation.confidence)."""

    ROI = "roi"  # entropy averaged over the mask's bbox + 10 %
    PAPER = "paper"  # entropy averaged over the whole probability map (the paper's formula as written)


class TieBreak(_StrEnum):
    NONE = "none"
    MEAN_PROB = "mean_prob"
    EVIDENCE_ORDER = "evidence_order"
    NO_VALID_ANSWERS = "no_valid_answers"


class AnswerKind(_StrEnum):
    """How answers were normalised for the vote (app.pipeline.parsing.question_kind)."""

    YES_NO = "yes/no"  # present/absent/none/no evidence ... count as yes/no
    OPEN = "open"  # words only: "none" stays "none"


class Scope(_StrEnum):
    """What a question is answered about (``ask --scope``, the Ask panel's Scope)."""

    SLICE = "slice"  # the slice on screen
    STUDY = "study"  # the whole series: evidence slices chosen across the volume


class LocaliseRoute(_StrEnum):
    """How a study-scope run found the entity across the volume (app.pipeline.study_scope)."""

    CLINICIAN_BOX_3D = "clinician box propagated in 3-D"
    TEXT_PER_SLICE = "text route per slice"  # SAM3 prompted with the entity names on each slice looked at
    SAMPLED_ENTITY_BOXES = "entity model boxes on sampled slices"


class StudyRule(_StrEnum):
    """How per-slice answers became the study's answer (what decided it)."""

    CONFIDENT_POSITIVE = "yes/no: any confident positive"
    MAJORITY = "majority over slices"
    TIE_BY_CONFIDENCE = "majority over slices, tie broken by answer confidence"
    TIE_BY_PRIMARY = "majority over slices, tie broken by the largest cross-section"
    NO_ANSWERS = "no slice gave a usable answer"


class EvidenceSliceRole(_StrEnum):
    PRIMARY = "largest confident cross-section"
    NEIGHBOUR = "neighbour"
    FALLBACK = "asked-from slice (nothing confident was localised)"


class CoordEventKind(_StrEnum):
    PLAN = "plan"
    ROUND = "round"
    REGROUND = "reground"
    REVIEW = "review"
    FAILURE = "failure"
    DECISION = "decision"


class ReviewAction(_StrEnum):
    UNSET = ""  # a CoordReview built without an action (the record's default; never from a review)
    ACCEPT = "accept"
    CHOOSE = "choose"
    REVISE = "revise"
    ANOTHER_ROUND = "another_round"


# How every re-grounding step is labelled (record and audit): not part of CARE. Here, not in the
# coordinator package, so the audit layer names it without importing the pipeline's image code.
REGROUND_LABEL = "entropy-guided re-grounding (heuristic after MedVR; not part of CARE)"


class ReGroundAction(_StrEnum):
    UNSET = ""  # a CoordReGround built without an action (the record's default)
    NEXT_ENTITY = "next_entity"
    LOOSER_CROP = "looser_crop"
    OTHER_EVIDENCE = "other_evidence"
    NONE = "none"


class DecisionSource(_StrEnum):
    UNSET = ""  # a CoordDecision built without a source (the record's default)
    REVIEW = "review"
    VOTE = "vote"  # the coordinator failed or stayed silent: the CARE-Flow answer stands


class OverrideKind(_StrEnum):
    """What a clinician changed after a run (the audit store's override rows)."""

    MASK_DISCARD = "mask_discard"
    MASK_RESTORE = "mask_restore"
    MASK_ACCEPT = "mask_accept"
    MASK_REJECT = "mask_reject"
    BOX_ADDED = "box_added"
    REASK = "reask"
    FINAL_ANSWER = "final_answer"
    NOTE = "note"
    MEASUREMENT = "measurement"  # a viewer measurement recorded with the run (detail: the measurement + numbers)
    MEASUREMENT_REMOVED = "measurement_removed"


def coerce(enum_type: type[E], value: object, what: str) -> E:
    """``value`` as a member of ``enum_type``; ValueError naming ``what`` and the choices."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in enum_type)  # type: ignore[attr-defined]
        raise ValueError(f"{what}: {value!r} is not one of {choices}") from None


class GlobalEvidence(_StrEnum):
    """What the global evidence pass gives the VQA model beside the slice (profile option)."""

    IMAGE = "image"  # the slice alone
    ONES_MASK = "ones-mask"  # the paper's global evidence: the slice and an all-ones (all-white) mask


class CropEntity(_StrEnum):
    """Which accepted mask the zoom-in crop is cut around (profile option)."""

    MOST_CONFIDENT = "most-confident"  # the accepted mask of highest confidence C
    NAMED_OR_MOST_CONFIDENT = "named-or-most-confident"  # an entity the question names, else the above


class CropChoice(_StrEnum):
    """Why a crop is around its entity (recorded on the crop evidence item)."""

    MOST_CONFIDENT = "most-confident"
    NAMED = "named in the question"


class CropUnit(_StrEnum):
    """What the crop is square in: millimetres on a calibrated image, pixels otherwise."""

    MM = "mm"
    PIXELS = "pixels"


class OffloadPlan(_StrEnum):
    """How a profile's local models share the GPU (app.pipeline.backends.offload)."""

    KEEP_ALL = "keep-all"  # every stage's model stays resident
    UNLOAD_BEFORE_VQA = "unload-before-vqa"  # stage 1-2 models are unloaded before the VQA model loads
    CPU_OFFLOAD = "cpu-offload"  # stage 1-2 models run on the CPU, only the VQA model on the GPU


class StopReason(_StrEnum):
    """Why 3-D propagation of a box stopped at one end (app.pipeline.segmentation.propagate)."""

    VOLUME_END = "volume end"  # the series has no further slice
    MAX_SLICES = "max slices"  # the rules' per-direction slice budget was spent
    EMPTY = "empty mask"
    LOW_IOU = "low predicted IoU"  # LiteMedSAM's IoU head
    LOW_PRESENCE = "low presence score"  # SAM3's presence head below the profile's min_object_score
    LOW_CONFIDENCE = "low mask confidence"  # C = 1 - H/log 2
    AREA_DROP = "area dropped"
    AREA_GROWTH = "area grew"
    INTENSITY = "intensity changed"  # mean inside the mask left the seed slice's range
    DRIFT = "mask drifted"  # the mask barely overlaps the previous slice's
    TRIMMED = "trimmed"  # the clinician trimmed this end
