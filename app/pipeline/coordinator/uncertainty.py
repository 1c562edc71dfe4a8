"""Uncertainty-driven re-grounding (after MedVR's Entropy-guided Visual Regrounding).

Not part of CARE: MedVR's EVR is a training-time (RL exploration) mechanism; applying it at
inference is this app's heuristic, so it is opt-in (``reground = true``) and every re-grounding
is labelled :data:`REGROUND_LABEL` in the record and the audit.

Measure. The uncertainty of an answer is the mean surprisal of its answer tokens,
``u = -mean(log p(token))`` over the ``<answer>`` span (= ``-log`` of the record's
``mean_answer_prob``). Why this and not the full token entropy: both backends return the
log-probability of the *chosen* token (transformers' transition scores; the chat API's
``logprobs``) but not always the whole distribution. For greedy decoding the chosen token is
the mode, so its surprisal is the min-entropy ``-log max_v p(v)``, a lower bound of the
Shannon entropy: when ``u`` is high, the entropy is at least as high. ``u = 0.4`` means the
answer tokens had a geometric-mean probability of ``e^-0.4 = 0.67``.

Which answers. A round's uncertainty is the mean ``u`` of the answers that agree with the
round's own majority answer (what would be final if nothing happened). A round with no
usable answer at all counts as infinitely uncertain.

What to do (first that applies): look at the next accepted entity on its own (the answer was
built from the union of several masks); widen the crop (twice the margin: more context); run
an evidence type no round has used yet. Otherwise nothing is left to try and the review
decides on what there is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from app.pipeline.evidence import DEFAULT_MARGIN
from app.pipeline.flow import EVIDENCE_ORDER, vote
from app.pipeline.record import Answer, MaskRecord
from app.pipeline.types import EvidenceType

# The record's action vocabulary; the ReGroundAction dataclass below is the whole decision.
from app.pipeline.vocab import REGROUND_LABEL  # noqa: F401 - re-exported for the coordinator
from app.pipeline.vocab import ReGroundAction as ReGroundKind

DEFAULT_THRESHOLD = 0.4  # nats per answer token; geometric-mean answer-token probability < 0.67
MAX_MARGIN = 2.0  # beyond this a "crop" is mostly the whole slice


def answer_uncertainty(answer: Answer) -> float | None:
    """``-mean log p`` of the answer tokens; None when the answer has no scored tokens."""
    p = answer.mean_answer_prob
    if p is None or not answer.normalized:
        return None
    return float(-math.log(max(p, 1e-300)))


@dataclass
class RoundUncertainty:
    value: float  # math.inf when no answer of the round was usable
    indices: list[int] = field(default_factory=list)  # positions (in the given list) it was taken over
    leading: str = ""  # the round's majority answer (normalised)


def round_uncertainty(answers: Sequence[Answer]) -> RoundUncertainty:
    result = vote(answers)
    if not result.winner:
        return RoundUncertainty(math.inf, [], "")
    idx = [i for i, a in enumerate(answers) if a.normalized == result.winner]
    scores = [u for u in (answer_uncertainty(answers[i]) for i in idx) if u is not None]
    # Answers without token log-probs (a server that returns none) cannot trigger anything.
    value = sum(scores) / len(scores) if scores else 0.0
    return RoundUncertainty(value, idx, result.winner)


@dataclass
class ReGroundAction:
    action: ReGroundKind
    evidence: list[EvidenceType] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)  # focus masks; empty = every accepted mask
    crop_margin: float | None = None
    reason: str = ""


@dataclass
class GroundingHistory:
    """What earlier rounds looked at, so a re-ground never repeats itself."""

    evidence_used: set[EvidenceType] = field(default_factory=set)
    focused: list[tuple[str, ...]] = field(default_factory=list)  # entity sets rounds focused on
    margins: list[float] = field(default_factory=list)  # crop margins used


def choose_reground(
    round_evidence: Sequence[EvidenceType],
    round_focus: Sequence[str],
    masks: Sequence[MaskRecord],
    history: GroundingHistory,
) -> ReGroundAction:
    """The next thing to look at after an uncertain round (see the module docstring)."""
    accepted = sorted((m for m in masks if m.accepted and m.mask is not None and m.area_px > 0),
                      key=lambda m: -m.confidence)
    names = list(dict.fromkeys(m.entity for m in accepted))
    local = [e for e in round_evidence if e is not EvidenceType.GLOBAL]

    # 1. Another accepted entity, on its own, that no round has looked at alone yet.
    focus_now = tuple(round_focus) or tuple(names)
    for name in names:
        if (name,) not in history.focused and (name,) != focus_now:
            together = f"{len(focus_now)} entities together" if len(focus_now) > 1 else f"'{focus_now[0]}'"
            return ReGroundAction(
                ReGroundKind.NEXT_ENTITY, local or [EvidenceType.CROP], [name],
                reason=f"the uncertain answer looked at {together}; looking at '{name}' alone",
            )
    # 2. A crop that may have cut away the context: widen it.
    if EvidenceType.CROP in round_evidence and accepted:
        last = history.margins[-1] if history.margins else DEFAULT_MARGIN
        margin = min(MAX_MARGIN, last * 2.0)
        if margin > last:
            return ReGroundAction(
                ReGroundKind.LOOSER_CROP, [EvidenceType.CROP], list(round_focus), margin,
                reason=f"widening the zoom-in crop margin from {last:g} to {margin:g} of the mask size",
            )
    # 3. An evidence type nobody has tried yet (local types only when a mask exists to point at).
    for kind in EVIDENCE_ORDER:
        if kind in history.evidence_used:
            continue
        if kind is not EvidenceType.GLOBAL and not accepted:
            continue
        return ReGroundAction(ReGroundKind.OTHER_EVIDENCE, [kind], list(round_focus),
                              reason=f"trying {kind.value} evidence, not used so far")
    if not accepted:
        return ReGroundAction(ReGroundKind.NONE, reason="no accepted mask to zoom into or outline, and the global "
                                                        "view was already used")
    return ReGroundAction(ReGroundKind.NONE, reason="every entity, crop margin and evidence type was already tried")
