"""What the SR says about how the answer was decided, and text as DICOM accepts it."""
from __future__ import annotations

from app.dicom_export.sr import decision_text, evidence_chosen
from app.dicom_export.text import clean, short
from app.pipeline.record import Answer, CoordDecision, RunRecord, Vote, VoteResult
from app.pipeline.types import EvidenceType
from app.pipeline.vocab import DecisionSource, Mode


def _flow() -> RunRecord:
    r = RunRecord(question="q", mode=Mode.FLOW)
    r.vote = VoteResult(votes=[Vote(EvidenceType.CROP, "Yes", "yes", 0.9), Vote(EvidenceType.MASK, "no", "no", 0.8),
                               Vote(EvidenceType.GLOBAL, "yes.", "yes", 0.7)],
                        counts={"yes": 2, "no": 1}, winner="yes", independent_passes=3)
    return r


def test_flow_evidence_is_the_winning_passes():
    r = _flow()
    assert evidence_chosen(r) == "crop, global (CARE-Flow majority vote, 2 of 3 passes)"
    assert decision_text(r) == "none (CARE-Flow: no coordinator)"
    r.vote = None
    assert evidence_chosen(r) == "none (no vote winner)"


def test_coord_evidence_is_what_the_review_rests_on():
    r = _flow()
    r.mode = Mode.COORD
    r.answers = [Answer(EvidenceType.CROP, 0, answer="Yes"), Answer(EvidenceType.MASK, 1, answer="No"),
                 Answer(EvidenceType.CROP, 2, answer="No")]
    r.coordinator_decision = CoordDecision(final_answer="No", source=DecisionSource.REVIEW, candidate="A2",
                                           rests_on=["A2", "A3"], vote_answer="Yes", changed_vote=True,
                                           extra_rounds=1)
    assert evidence_chosen(r) == "mask, crop (CARE-Coord review, candidates A2, A3)"
    assert decision_text(r) == "from review: candidate A2, changed the vote answer 'Yes', 1 extra round"
    r.coordinator_decision = None
    assert decision_text(r) == "none recorded"
    r.coordinator_decision = CoordDecision(source=DecisionSource.VOTE, failure="no JSON in the reply")
    assert evidence_chosen(r).startswith("crop, global (CARE-Flow majority vote")
    assert decision_text(r) == ("no usable coordinator decision; the CARE-Flow vote answer stands "
                                "(no JSON in the reply)")


def test_control_characters_and_short_values():
    notes: list[str] = []
    # A tiny model's answer as recorded (BEL and a vertical tab in it).
    raw = ">cerebellum\ufffdomgan enhancingEF>nogeKL\x07\x0b ma colon"
    assert clean(raw, notes, "answer") == ">cerebellum\ufffdomgan enhancingEF>nogeKL\ufffd\ufffd ma colon"
    assert notes == ["answer: 2 control characters written as U+FFFD (DICOM text allows none)"]
    assert clean("line one\nline two\ttab") == "line one\nline two\ttab"  # allowed in ST/LT/UT
    label = short("ü" * 40, 64, notes, "segment label")  # 80 UTF-8 bytes
    assert label == "ü" * 30 + "..." and len(label.encode()) == 63
    assert notes[-1].startswith("segment label cut to 64 bytes")
    assert short("a\\b\nc", 64) == "a/b c"  # backslash separates values; LO is one line
