"""Parsing of model outputs: think/answer blocks, entity lists and boxes, answer normalisation."""
from __future__ import annotations

import pytest

from app.pipeline.parsing import (
    EntityProposal,
    normalize_answer,
    parse_entities,
    parse_think_answer,
    span_logprobs,
)
from app.pipeline.types import Generation


def test_well_formed_output_is_format_ok():
    p = parse_think_answer("<think>The mass is in the left upper lobe.</think><answer>Left upper lobe</answer>")
    assert (p.think, p.answer, p.format_ok, p.violations) == (
        "The mass is in the left upper lobe.", "Left upper lobe", True, []
    )


@pytest.mark.parametrize(
    "text, answer, think, violation",
    [
        ("Yes", "Yes", "", "missing <answer>"),
        ("<think>round opacity</think> yes", "yes", "round opacity", "missing <answer>"),
        ("<think>round opacity<answer>yes", "yes", "round opacity", "unclosed <think>"),
        ("<think>x</think><answer>yes", "yes", "x", "unclosed <answer>"),
        ("round opacity</think>no</answer>", "no", "round opacity", "missing <answer> opening tag"),
        ("<THINK>x</Think><ANSWER> No </answer>", "No", "x", None),
        ("Sure! <think>x</think><answer>no</answer> Hope this helps.", "no", "x", "text outside <think>/<answer>"),
        ("<think>x</think><answer>yes</answer><answer>no</answer>", "no", "x", "duplicated <answer>"),
        ("<think>x</think><answer><answer>liver</answer></answer>", "liver", "x", "nested <answer>"),
        ("<think>a</think><think>b</think><answer>c</answer>", "c", "a\nb", "duplicated <think>"),
        ("<think>x</think><answer>  </answer>", "", "x", "empty <answer>"),
        ("", "", "", "missing <think>"),
    ],
)
def test_malformed_outputs_are_read_with_violations(text, answer, think, violation):
    p = parse_think_answer(text)
    assert p.answer == answer
    assert p.think == think
    if violation is None:
        assert p.format_ok and p.violations == []
    else:
        assert not p.format_ok
        assert any(v.startswith(violation) for v in p.violations), p.violations


def test_answer_span_points_into_the_original_text():
    text = "<think>abc</think>\n<answer>  Right kidney </answer>"
    p = parse_think_answer(text)
    assert text[slice(*p.answer_span)] == "Right kidney"


def test_grounded_entities_become_pixel_boxes():
    text = (
        "<think>Need lungs.</think><answer><ref>left lung</ref><box>[[500, 100, 900, 800]]</box>, "
        "<ref>nodule</ref><box>[[250, 250, 500, 500]]</box></answer>"
    )
    parsed = parse_entities(text, (400, 200))  # width 400, height 200
    assert parsed.entities == [
        EntityProposal("left lung", (200, 20, 360, 160)),
        EntityProposal("nodule", (100, 50, 200, 100)),
    ]
    assert parsed.think == "Need lungs."
    assert parsed.violations == []


def test_out_of_range_reversed_and_degenerate_boxes():
    text = (
        "<think>t</think><answer><ref>liver</ref><box>[[-50, 0, 1200, 500]]</box>"
        "<ref>spleen</ref><box>[[800, 600, 700, 400]]</box>"
        "<ref>dot</ref><box>[[500, 500, 500, 520]]</box>"
        "<ref>heart</ref></answer>"
    )
    parsed = parse_entities(text, (100, 100))
    boxes = {e.name: e.box for e in parsed.entities}
    assert boxes == {"liver": (0, 0, 100, 50), "spleen": (70, 40, 80, 60), "dot": None, "heart": None}
    assert any("outside 0..1000" in v for v in parsed.violations)
    assert any("reversed" in v for v in parsed.violations)
    assert any("degenerate" in v for v in parsed.violations)


def test_more_than_five_entities_are_capped():
    text = "<think>t</think><answer>liver, spleen, left kidney, right kidney, pancreas, aorta, stomach</answer>"
    parsed = parse_entities(text, (64, 64))
    assert [e.name for e in parsed.entities] == ["liver", "spleen", "left kidney", "right kidney", "pancreas"]
    assert any("7 entities" in v for v in parsed.violations)


def test_no_entities_is_a_violation_not_an_error():
    parsed = parse_entities("<think>t</think><answer></answer>", (64, 64))
    assert parsed.entities == []
    assert "no entities proposed" in parsed.violations


def test_json_list_with_and_without_boxes():
    text = '<think>t</think><answer>["Liver", {"name": "gallbladder", "box": [100, 100, 300, 400]}]</answer>'
    parsed = parse_entities(text, (1000, 500))
    assert parsed.entities == [EntityProposal("Liver"), EntityProposal("gallbladder", (100, 50, 300, 200))]


def test_numbered_and_bulleted_lists():
    text = "<think>t</think><answer>\n1. Right lung\n2) Left lung\n- trachea\n• carina and\n</answer>"
    parsed = parse_entities(text, (64, 64))
    assert [e.name for e in parsed.entities] == ["Right lung", "Left lung", "trachea", "carina"]
    text2 = "<answer>liver, spleen, and the left kidney.</answer>"
    assert [e.name for e in parse_entities(text2, (64, 64)).entities] == ["liver", "spleen", "the left kidney"]


def test_duplicate_entities_merge_and_keep_a_box():
    text = "<answer>liver, <ref>Liver</ref><box>[[0, 0, 500, 500]]</box></answer>"
    parsed = parse_entities(text, (10, 10))
    assert parsed.entities == [EntityProposal("Liver", (0, 0, 5, 5))]


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("Yes.", "yes"), ("Yes, there is", "yes"), ("YES", "yes"), ("yes - a nodule", "yes"),
        ("No.", "no"), ("no evidence of effusion", "no"), ("There is no pneumothorax", "no"),
        ("None", "no"), ("Normal", "normal"), ("The left lung.", "left lung"), ("two", "2"),
        ("Answer: Right kidney", "right kidney"), ("<answer>Liver</answer>", "liver"), ("", ""),
    ],
)  # fmt: skip
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


@pytest.mark.parametrize("raw", ["N/A", "n/a", "Y-shaped fracture", "n", "y"])
def test_single_letters_are_not_yes_or_no_votes(raw):
    assert normalize_answer(raw) not in ("yes", "no")


def test_span_logprobs_overlapping_tokens():
    gen = Generation(text="abcdef", tokens=["ab", "cd", "ef"], token_logprobs=[-1.0, -2.0, -3.0])
    assert span_logprobs(gen, 1, 3) == [-1.0, -2.0]
    assert span_logprobs(gen, 4, 6) == [-3.0]
    assert span_logprobs(gen, 6, 6) == []
