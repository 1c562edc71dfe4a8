"""CARE-Flow majority vote: majorities, ties broken by answer-token probability, abstentions."""
from __future__ import annotations

import math

import pytest

from app.pipeline.flow import answer_token_span, mean_prob, vote
from app.pipeline.record import Answer
from app.pipeline.types import EvidenceType

CROP, MASK, GLOBAL = EvidenceType.CROP, EvidenceType.MASK, EvidenceType.GLOBAL


def ans(ev, text, prob=None):
    # normalized left empty: vote() normalises with parsing.normalize_answer itself.
    return Answer(evidence=ev, call_index=0, answer=text, mean_answer_prob=prob)


def test_majority_wins_regardless_of_probability():
    r = vote([ans(CROP, "Yes."), ans(MASK, "yes", 0.2), ans(GLOBAL, "No", 0.99)])
    assert r.winner == "yes" and r.counts == {"yes": 2, "no": 1}
    assert r.tie_break == "none" and r.tied == []
    assert r.winner_raw == "yes"  # the raw wording of the most confident winning vote
    assert [v.evidence for v in r.votes] == [CROP, MASK, GLOBAL]
    assert [v.raw_answer for v in r.votes] == ["Yes.", "yes", "No"]


def test_two_way_tie_broken_by_mean_prob_with_an_abstention():
    r = vote([ans(CROP, "left lung", 0.41), ans(MASK, "", None), ans(GLOBAL, "Right lung", 0.74)])
    assert r.tied == ["left lung", "right lung"]
    assert r.tie_break == "mean_prob" and r.winner == "right lung" and r.winner_raw == "Right lung"
    assert len(r.votes) == 3 and r.votes[1].normalized == ""  # the abstention is recorded
    assert "0.74" in r.detail and "0.41" in r.detail


def test_all_three_different_highest_probability_wins():
    r = vote([ans(CROP, "CT", 0.5), ans(MASK, "MRI", 0.9), ans(GLOBAL, "X-ray", 0.3)])
    assert set(r.counts.values()) == {1} and len(r.tied) == 3
    assert r.tie_break == "mean_prob" and r.winner == vote([ans(MASK, "MRI")]).winner
    assert [v.mean_prob for v in r.votes] == [0.5, 0.9, 0.3]


def test_equal_probabilities_fall_back_to_evidence_order():
    r = vote([ans(GLOBAL, "no", 0.6), ans(MASK, "yes", 0.6)])
    assert r.tie_break == "evidence_order" and r.winner == "yes"  # mask ranks before global
    r = vote([ans(GLOBAL, "no"), ans(CROP, "yes")])  # no probabilities at all
    assert r.tie_break == "evidence_order" and r.winner == "yes"


def test_no_usable_answer():
    r = vote([ans(CROP, ""), ans(MASK, "   "), ans(GLOBAL, "")])
    assert r.winner == "" and r.tie_break == "no_valid_answers" and len(r.votes) == 3


def test_answer_token_span_and_mean_prob():
    text = "<think>look</think><answer>Yes</answer>"
    tokens = ["<think>", "look", "</think>", "<answer>", "Y", "es", "</answer>"]
    assert "".join(tokens) == text
    start = text.index("Yes")
    span = answer_token_span(tokens, text, start, start + 3)
    assert span == (4, 6)
    lps = [-5.0, -5.0, -5.0, -5.0, math.log(0.5), math.log(0.8), -9.0]
    assert mean_prob(lps, span) == pytest.approx(math.sqrt(0.4))
    assert answer_token_span(tokens, text, 0, 0) is None and mean_prob(lps, None) is None
