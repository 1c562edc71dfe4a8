"""The presentation of a study-scope run's ``study`` section (app.audit.present.study builds it)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StudySliceRow:
    index: int  # 0-based, the volume's slice order (what a viewer jump takes)
    number: int  # 1-based, as the viewer's "Im: k/n"
    title: str  # "Slice 34/48 · largest confident cross-section"
    score_text: str  # what the localisation found there
    answer_text: str  # the slice's answer and its probability, or why it has none
    status_text: str
    image_file: str  # the windowed slice the models saw (thumbnail)
    counted: bool  # an input of the aggregation
    winner: bool  # gave the study's answer
    in_run: bool  # the run's own sections are this slice's


@dataclass(frozen=True)
class StudyView:
    scope: str  # = the header's scope line
    rests_on: str  # one sentence: the answer rests on these slices, by this rule
    route_text: str
    looked_at_text: str  # which slices the localisation looked at
    selection_text: str
    rows: tuple[StudySliceRow, ...]
    rule_text: str
    decided_text: str
    counts_text: str
    mask3d_text: str  # "" without a 3-D mask
    primary_note: str  # which slice the run's other sections show
    terminal_lines: tuple[str, ...]
    # The 3-D mask's figures as (label, value) rows (the PDF's 3-D lesion table); () without one.
    mask3d_rows: tuple[tuple[str, str], ...] = ()
