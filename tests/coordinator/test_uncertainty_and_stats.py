"""The uncertainty measure, the re-grounding choice, and the change statistics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.pipeline.coordinator.stats import CORRECTION, ERRONEOUS, NEUTRAL, UNCHANGED, ChangeStats, classify_change
from app.pipeline.coordinator.uncertainty import (
    GroundingHistory,
    answer_uncertainty,
    choose_reground,
    round_uncertainty,
)
from app.pipeline.parsing import normalize_answer
from app.pipeline.record import Answer, MaskRecord
from app.pipeline.types import EvidenceType as E


def ans(evidence: E, text: str, p: float | None) -> Answer:
    return Answer(evidence, 0, answer=text, normalized=normalize_answer(text), mean_answer_prob=p)


def mask(name: str, conf: float, accepted: bool = True) -> MaskRecord:
    m = np.zeros((8, 8), bool)
    m[2:5, 2:5] = True
    return MaskRecord(name, "litemedsam", "box", confidence=conf, accepted=accepted, area_px=9, mask=m)


def test_uncertainty_is_minus_mean_logprob_of_the_answer_tokens():
    assert answer_uncertainty(ans(E.CROP, "yes", math.exp(-0.7))) == pytest.approx(0.7)
    assert answer_uncertainty(ans(E.CROP, "yes", 1.0)) == 0.0
    assert answer_uncertainty(ans(E.CROP, "yes", None)) is None  # no log-probs from the server
    assert answer_uncertainty(ans(E.CROP, "", 0.9)) is None  # no usable answer


def test_round_uncertainty_is_taken_over_the_leading_answer():
    answers = [ans(E.CROP, "yes", math.exp(-0.2)), ans(E.MASK, "no", math.exp(-3.0)),
               ans(E.GLOBAL, "Yes.", math.exp(-0.4))]
    ru = round_uncertainty(answers)
    assert ru.leading == "yes" and ru.indices == [0, 2] and ru.value == pytest.approx(0.3)
    assert math.isinf(round_uncertainty([ans(E.CROP, "", None)]).value)


def test_reground_order_next_entity_then_looser_crop_then_other_evidence():
    masks = [mask("trachea", 0.78), mask("lung tumour", 0.83), mask("vertebra", 0.55, accepted=False)]
    h = GroundingHistory({E.CROP}, [("lung tumour", "trachea")], [0.25])
    a = choose_reground([E.CROP], ["lung tumour", "trachea"], masks, h)
    assert (a.action, a.entities, a.evidence) == ("next_entity", ["lung tumour"], [E.CROP])  # most confident first
    h.focused.append(("lung tumour",))
    a = choose_reground([E.CROP], ["lung tumour"], masks, h)
    assert (a.action, a.entities) == ("next_entity", ["trachea"])
    h.focused.append(("trachea",))
    a = choose_reground([E.CROP], ["trachea"], masks, h)
    assert a.action == "looser_crop" and a.crop_margin == 0.5 and "0.25 to 0.5" in a.reason
    h.margins += [0.5, 1.0, 2.0]
    a = choose_reground([E.CROP], ["trachea"], masks, h)
    assert (a.action, a.evidence) == ("other_evidence", [E.MASK])
    h.evidence_used |= {E.MASK, E.GLOBAL}
    assert choose_reground([E.CROP], ["trachea"], masks, h).action == "none"


def test_without_accepted_masks_only_global_is_worth_trying():
    masks = [mask("vertebra", 0.5, accepted=False)]
    a = choose_reground([E.CROP], [], masks, GroundingHistory({E.CROP}, [()], [0.25]))
    assert (a.action, a.evidence) == ("other_evidence", [E.GLOBAL])


def test_change_classification_and_percentages():
    truth = {"yes"}

    def correct(text: str) -> bool:
        return normalize_answer(text) in truth

    cases = [("yes", "Yes.", UNCHANGED), ("no", "yes", CORRECTION), ("yes", "no", ERRONEOUS),
             ("no", "left lung", NEUTRAL)]
    stats = ChangeStats()
    for vote, final, expected in cases:
        kind = classify_change(vote, final, correct, normalize_answer)
        assert kind == expected
        stats.add(kind)
    stats.add(UNCHANGED, fallback=True)
    d = stats.to_dict()
    # changed = corrections + erroneous (the paper's definition); the neutral change apart.
    assert (d["n"], d["changed"], d["corrections"], d["erroneous"], d["neutral"], d["fallbacks"]) == (5, 2, 1, 1, 1, 1)
    assert d["changed_pct"] == pytest.approx(40.0) and d["corrections_pct"] == pytest.approx(20.0)
    assert d["net_gain_pct"] == pytest.approx(0.0)
    text = stats.format()
    assert "changed 2 of 5 vote answers (40.00%" in text and "wrong -> right" in text and "failed on 1" in text
