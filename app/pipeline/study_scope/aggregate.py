"""The study's answer from the evidence slices' answers (docs/study_scope.md says why this rule).

- A yes/no question ("Is there a mass ...?"): **any confident positive**. A lesion need not show
  on every evidence slice (a neighbour at its end may miss it), so a "no" there does not
  contradict a "yes" elsewhere; "confident" (the slice's answer tokens have mean probability at
  least ``CONFIDENT_PROB``) keeps one noisy slice from deciding alone. Without a confident
  positive, the majority rule below applies.
- Otherwise **majority over slices**: each answered slice has one vote, its run's final answer
  (normalised as the per-slice vote normalises). A tie goes to the tied answer with the highest
  single-slice answer probability; if that is still tied (or unknown), to the answer of the
  largest cross-section (the primary slice, the first that ran) or the earliest tied slice.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from app.pipeline.parsing import normalize_answer, question_kind
from app.pipeline.study_record import EvidenceSlice, SliceVote, StudyAggregation
from app.pipeline.vocab import AnswerKind, RunStatus, StudyRule

CONFIDENT_PROB = 0.5
POSITIVE = "yes"
RULE_YES_NO = (f"yes/no question: any evidence slice answering yes with answer-token probability "
               f"\u2265 {CONFIDENT_PROB:.2f} decides yes; otherwise majority over slices, "
               "tie broken by answer probability, then by the largest cross-section")
RULE_OPEN = "majority over slices, tie broken by answer probability, then by the largest cross-section"


def aggregate(question: str, slices: Sequence[EvidenceSlice]) -> StudyAggregation:
    """``slices`` in the order they ran (the primary slice first)."""
    kind = question_kind(question)
    rule = RULE_YES_NO if kind is AnswerKind.YES_NO else RULE_OPEN
    votes = [SliceVote(s.index, s.normalized or normalize_answer(s.answer, question=question), s.answer,
                       s.answer_prob)
             for s in slices if s.status == RunStatus.COMPLETED and s.answer.strip()]
    votes = [v for v in votes if v.normalized]
    counts = dict(Counter(v.normalized for v in votes))
    agg = StudyAggregation(kind=kind, rule=rule, decided_by=StudyRule.NO_ANSWERS, inputs=votes, counts=counts,
                           confident_prob=CONFIDENT_PROB)
    if not votes:
        agg.detail = "no evidence slice gave a usable answer"
        return agg
    if kind is AnswerKind.YES_NO:
        positives = [v for v in votes if v.normalized == POSITIVE and v.prob is not None and v.prob >= CONFIDENT_PROB]
        if positives:
            best = max(positives, key=lambda v: v.prob or 0.0)
            return _decide(agg, POSITIVE, best, votes, StudyRule.CONFIDENT_POSITIVE,
                           f"slice {best.index + 1} answered yes with probability {best.prob:.2f}")
    top = max(counts.values())
    tied = [a for a, c in counts.items() if c == top]
    if len(tied) == 1:
        winner = tied[0]
        best = _best_of(votes, winner)
        return _decide(agg, winner, best, votes, StudyRule.MAJORITY,
                       f"{top} of {len(votes)} answered slices gave \u201c{winner}\u201d")
    agg.tied = sorted(tied)
    probs = {a: max((v.prob for v in votes if v.normalized == a and v.prob is not None), default=None) for a in tied}
    known = {a: p for a, p in probs.items() if p is not None}
    if known and list(known.values()).count(max(known.values())) == 1:
        winner = max(known, key=lambda a: known[a])
        return _decide(agg, winner, _best_of(votes, winner), votes, StudyRule.TIE_BY_CONFIDENCE,
                       f"{len(tied)} answers tied at {top} slice(s); \u201c{winner}\u201d had the highest "
                       f"answer probability ({known[winner]:.2f})")
    first = next(v for v in votes if v.normalized in tied)  # the primary slice ran first
    return _decide(agg, first.normalized, first, votes, StudyRule.TIE_BY_PRIMARY,
                   f"{len(tied)} answers tied at {top} slice(s) with no probability to separate them; "
                   f"slice {first.index + 1}'s answer (the first that ran: the largest cross-section) stands")


def _best_of(votes: Sequence[SliceVote], answer: str) -> SliceVote:
    same = [v for v in votes if v.normalized == answer]
    return max(same, key=lambda v: -1.0 if v.prob is None else v.prob)


def _decide(agg: StudyAggregation, winner: str, source: SliceVote, votes: Sequence[SliceVote],
            decided_by: StudyRule, detail: str) -> StudyAggregation:
    agg.winner, agg.winner_raw, agg.decided_by, agg.detail = winner, source.answer, decided_by, detail
    agg.winner_slices = [v.index for v in votes if v.normalized == winner]
    return agg
