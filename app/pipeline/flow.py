"""CARE-Flow aggregation: majority vote over the evidence passes, ties broken by confidence.

Each distinct model input casts one vote with its normalised answer: passes whose prompt and
images were identical (crop and mask fallen back to the global image) were asked once and
count once (``VoteResult.independent_passes``). A pass whose answer is empty abstains but
stays in the record. A pass that broke the format (e.g. no ``<answer>`` tag) still votes
with the parser's best-effort answer; the violation is recorded on the answer and as a run
warning, so the audit shows what the vote rested on.
When candidates tie on votes, the one whose votes have the highest mean answer-token
probability wins (exp of the mean log-prob of the answer's tokens: the model's own
confidence in what it wrote); if that still ties, the fixed evidence order crop > mask >
global decides, so the result is deterministic and the record says which rule applied.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

from .record import Answer, Vote, VoteResult
from .types import EvidenceType
from .vocab import TieBreak

EVIDENCE_ORDER = (EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL)
_PROB_EPS = 1e-9  # probabilities closer than this count as equal


def answer_token_span(tokens: Sequence[str], text: str, start: int, end: int) -> tuple[int, int] | None:
    """Tokens [i, j) whose characters overlap ``text[start:end]``.

    ``tokens`` are the decoded pieces of the generation; their concatenation is ``text``
    (backends decode each token on its own). Returns None when they do not line up or the
    range holds no token.
    """
    if start >= end or not tokens:
        return None
    pos = 0
    first = last = None
    for i, tok in enumerate(tokens):
        nxt = pos + len(tok)
        if nxt > start and pos < end and tok.strip():
            if first is None:
                first = i
            last = i
        pos = nxt
    if first is None or last is None:
        return None
    return first, last + 1


def mean_prob(logprobs: Sequence[float], span: tuple[int, int] | None) -> float | None:
    """exp(mean log-prob) of the tokens in ``span``; None when there is nothing to average."""
    if span is None:
        return None
    chosen = [lp for lp in logprobs[span[0] : span[1]] if lp is not None and math.isfinite(lp)]
    if not chosen:
        return None
    return float(math.exp(sum(chosen) / len(chosen)))


def _order(e: EvidenceType) -> int:
    return EVIDENCE_ORDER.index(e) if e in EVIDENCE_ORDER else len(EVIDENCE_ORDER)


def _counted_once(answers: Sequence[Answer], votes: list[Vote]) -> None:
    """Rows that share one model call (``Answer.same_input_as``: the same prompt and images,
    asked once) vote once: the row that asked it counts (else the first of them here), the
    others name the evidence they repeated."""
    shared = {a.call_index for a in answers if a.same_input_as is not None}
    counted: dict[int, Vote] = {}
    for i in sorted(range(len(answers)), key=lambda j: answers[j].same_input_as is not None):  # askers first
        call = answers[i].call_index
        if call not in shared:
            continue
        if call in counted:
            votes[i].same_input_as = counted[call].evidence
        else:
            counted[call] = votes[i]


def _plural(n: int) -> str:
    return f"{n} independent pass" + ("" if n == 1 else "es")


def passes_note(votes: Sequence[Vote]) -> str:
    """' (crop and mask fell back to the global image)': why passes are fewer than evidence types."""
    fell = list(dict.fromkeys(v.evidence.value for v in votes if v.fell_back))
    fell_counted = {v.evidence for v in votes if v.same_input_as is None and v.fell_back}
    # A repeat proper: neither this pass nor the one it shares with fell back (a global pass
    # sharing a fallen-back crop's input is the fallback, said above).
    repeated = sum(1 for v in votes if v.same_input_as is not None and not v.fell_back
                   and v.same_input_as not in fell_counted)
    parts = []
    if fell:
        parts.append(f"{' and '.join(fell) if len(fell) < 3 else ', '.join(fell[:-1]) + ' and ' + fell[-1]} "
                     "fell back to the global image")
    if repeated:
        parts.append(f"{repeated} repeated input{'s' if repeated > 1 else ''} asked once")
    return f" ({'; '.join(parts)})" if parts else ""


def agreement(result: VoteResult) -> str:
    """'2 of 3 independent passes agree', '1 independent pass (crop and mask fell back to the
    global image)'; "" for a record without the count (written before it was recorded)."""
    n = result.independent_passes
    if n <= 0:
        return ""
    note = passes_note(result.votes)
    if n == 1 or not result.winner:
        return _plural(n) + note
    return f"{result.counts.get(result.winner, 0)} of {n} independent passes agree{note}"


def vote(answers: Sequence[Answer], normalize: Callable[[str], str] | None = None,
         question: str | None = None) -> VoteResult:
    """Majority vote over ``answers``, one vote per distinct model input; every vote and the
    tie-break are recorded. With the ``question``, answers not yet normalised are normalised for
    its kind (yes/no or open), and the result records which normalisation applied."""
    from .parsing import normalize_answer, question_kind

    if normalize is None:
        def normalize(text: str) -> str:
            return normalize_answer(text, question=question)
    votes = [
        Vote(
            evidence=a.evidence,
            raw_answer=a.answer,
            normalized=a.normalized or normalize(a.answer or ""),
            mean_prob=a.mean_answer_prob,
            fell_back=a.fell_back,
        )
        for a in answers
    ]
    _counted_once(answers, votes)
    counted = [v for v in votes if v.same_input_as is None]
    valid = [v for v in counted if v.normalized]
    counts: dict[str, int] = {}
    for v in valid:
        counts[v.normalized] = counts.get(v.normalized, 0) + 1
    result = VoteResult(votes=votes, counts=counts, independent_passes=len(counted),
                        normalisation=None if question is None else question_kind(question))
    if not valid:
        result.tie_break = TieBreak.NO_VALID_ANSWERS
        result.detail = f"no evidence pass produced a usable answer ({_plural(len(counted))}{passes_note(votes)})"
        return result

    top = max(counts.values())
    tied = [c for c in counts if counts[c] == top]  # first-seen order

    def group_prob(candidate: str) -> float | None:
        probs = [v.mean_prob for v in valid if v.normalized == candidate and v.mean_prob is not None]
        return sum(probs) / len(probs) if probs else None

    def best_evidence(candidate: str) -> int:
        return min(_order(v.evidence) for v in valid if v.normalized == candidate)

    tie = ""
    if len(tied) == 1:
        winner = tied[0]
    else:
        result.tied = list(tied)
        probs = {c: group_prob(c) for c in tied}
        scored = [c for c in tied if probs[c] is not None]
        best_p = max((probs[c] for c in scored), default=None)  # type: ignore[type-var]
        leaders = [c for c in scored if best_p - probs[c] <= _PROB_EPS] if best_p is not None else []  # type: ignore[operator]
        if len(leaders) == 1:
            winner = leaders[0]
            result.tie_break = TieBreak.MEAN_PROB
            tie = "tie on votes broken by mean answer-token probability: " + ", ".join(
                f"{c!r}={probs[c]:.4f}" if probs[c] is not None else f"{c!r}=n/a" for c in tied
            )
        else:
            pool = leaders or tied
            winner = min(pool, key=best_evidence)
            result.tie_break = TieBreak.EVIDENCE_ORDER
            tie = (
                "tie on votes and on mean answer-token probability; fixed evidence order "
                + " > ".join(e.value for e in EVIDENCE_ORDER)
                + " decided"
            )
    result.winner = winner
    result.detail = agreement(result) + (f"; {tie}" if tie else "")
    # The raw wording shown to the clinician: the most confident vote for the winner.
    winners = [v for v in valid if v.normalized == winner]
    winners.sort(key=lambda v: (-(v.mean_prob if v.mean_prob is not None else -1.0), _order(v.evidence)))
    result.winner_raw = winners[0].raw_answer
    return result
