"""The ``study`` section of a run record: a question answered about the whole series.

A study-scope run's own sections (input, entities, masks, evidence, answers, vote) are those of
its *primary* evidence slice (the largest confident cross-section); every other evidence slice
went through the same stages in a run record of its own, kept here whole (``record``) with its
images written beside run.json under a ``sNNN_`` prefix. The study's answer is the aggregation
of the per-slice answers (``aggregation``: the rule, its inputs, what decided).

Slice indices are in the volume's slice order (0-based, as ``InputInfo.slice_index``);
``number`` / ``evidence_numbers`` are the same slices 1-based, as the viewer's "Im: k/n" shows them.
Split from :mod:`app.pipeline.record` (which imports this module, never the reverse).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from app.pipeline.vocab import AnswerKind, EvidenceSliceRole, LocaliseRoute, RunStatus, StudyRule


def _transient(default: Any = None) -> Any:
    return field(default=default, compare=False, repr=False, metadata={"transient": True})


@dataclass
class LocalisedSlice:
    """One slice the localisation looked at, and what it found there."""

    index: int
    number: int  # 1-based
    area_px: int = 0  # of the largest confident (accepted / included) mask; 0: nothing confident
    confidence: float | None = None  # C of that mask (or of the best mask when none was confident)
    confident: bool = False
    entity: str = ""  # what the mask is of
    box: tuple[int, int, int, int] | None = None  # the box the evidence run prompts on this slice (display frame)
    note: str = ""  # e.g. a propagation stop reason


@dataclass
class StudyMask3D:
    """The 3-D mask's statistics (the clinician-box route), in the volume's own geometry."""

    backend: str
    seed_slice: int
    first: int
    last: int
    voxels: int
    volume_ml: float | None  # None: the file has no spacing (no mm invented)
    extent_slices: int
    extent_mm: float | None
    largest_diameter_mm: float | None
    largest_diameter_px: float
    diameter_slice: int | None
    stop_reasons: list[str] = field(default_factory=list)  # towards the first, towards the last slice
    rules: str = ""  # the propagation rules' name
    per_slice: list[dict[str, Any]] = field(default_factory=list)  # the propagation's own per-slice rows


@dataclass
class EvidenceSlice:
    """One evidence slice: why it was chosen, what its CARE run answered."""

    index: int
    number: int  # 1-based
    role: EvidenceSliceRole
    area_px: int = 0  # the localisation's score for this slice
    confidence: float | None = None
    status: RunStatus = RunStatus.RUNNING
    answer: str = ""  # the slice run's final answer, raw
    normalized: str = ""
    answer_prob: float | None = None  # highest mean answer-token probability among the passes giving it
    counts: dict[str, int] = field(default_factory=dict)  # the slice's own vote counts
    independent_passes: int = 0
    image_file: str = ""  # the windowed slice the models saw (thumbnail source)
    in_run: bool = False  # True: the run's own sections are this slice's
    record: dict[str, Any] | None = None  # the slice's own run record (to_dict) when not in_run
    error: str = ""
    image: np.ndarray | None = _transient()  # (H, W, 3) uint8
    run: Any = _transient()  # the slice's RunRecord in memory (not in_run), for its images


@dataclass
class SliceVote:
    index: int
    normalized: str
    answer: str
    prob: float | None


@dataclass
class StudyAggregation:
    """The study's answer from the per-slice answers."""

    kind: AnswerKind  # how the question was read (yes/no or open)
    rule: str  # the rule as configured, in words
    decided_by: StudyRule  # which part of the rule decided this run
    inputs: list[SliceVote] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # normalised answer -> slices
    winner: str = ""  # normalised
    winner_raw: str = ""
    winner_slices: list[int] = field(default_factory=list)  # indices of the slices that gave the winner
    tied: list[str] = field(default_factory=list)
    confident_prob: float = 0.5  # yes/no: the answer-token probability a positive must reach
    detail: str = ""


@dataclass
class StudyScope:
    """Everything a study-scope run did beyond its primary slice."""

    asked_from_slice: int  # the slice on screen when the question was asked
    num_slices: int
    plane: str
    route: LocaliseRoute | None = None  # None: stopped before the localisation finished
    route_note: str = ""
    sampled_slices: list[int] = field(default_factory=list)  # the slices the localisation looked at
    localised: list[LocalisedSlice] = field(default_factory=list)
    evidence_slices: list[int] = field(default_factory=list)  # chosen, volume order, 0-based
    evidence_numbers: list[int] = field(default_factory=list)  # the same, 1-based
    max_evidence_slices: int = 3
    primary_slice: int | None = None
    selection: str = ""  # how the evidence slices were chosen, in words
    slices: list[EvidenceSlice] = field(default_factory=list)  # in the order they ran (primary first)
    aggregation: StudyAggregation | None = None
    mask3d: StudyMask3D | None = None
    embedded_slices: int = 0  # slices the localisation gave a segmenter (each embedded once)
    localisation_seconds: float = 0.0
    # Sampled-slices route: each sampled slice's partial run record (entities, masks, model calls).
    localisation_records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def answered(self) -> list[EvidenceSlice]:
        return [s for s in self.slices if s.status == RunStatus.COMPLETED]

    def images(self) -> dict[str, np.ndarray]:
        """The other evidence slices' images under their file names (the primary's are the run's own)."""
        out: dict[str, np.ndarray] = {}
        for s in self.slices:
            if s.in_run:
                continue
            if s.image is not None and s.image_file:
                out[s.image_file] = s.image
            run = s.run
            if run is None:
                continue
            for m in run.masks:
                if m.mask is not None and m.png:
                    out[m.png] = m.mask
            for item in run.evidence:
                for name, img in zip(item.image_files, item.images):
                    if img is not None:
                        out.setdefault(name, img)
        return out

    def attach(self, read: Callable[[str], "np.ndarray | None"], slice_rgb: "np.ndarray | None") -> None:
        """Thumbnails back from files/blobs (``read`` returns None for a name that is absent)."""
        for s in self.slices:
            s.image = slice_rgb if s.in_run else (read(s.image_file) if s.image_file else None)
