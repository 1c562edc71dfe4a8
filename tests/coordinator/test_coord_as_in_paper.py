"""CARE-Coord as in the paper, extras opt-in: a local coordinator reviews but does not revise
by default (its different answer is a recorded finding), `may_revise` lets it revise; the
entropy-guided re-grounding (after MedVR, not part of CARE) runs only when enabled, labelled;
the change statistic is the paper's (changed = wrong->right + right->wrong, neutral apart)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app.pipeline.coordinator import ChangeStats, build_coordinator, classify_change
from app.pipeline.coordinator.stats import CORRECTION, ERRONEOUS, NEUTRAL, UNCHANGED
from app.pipeline.coordinator.uncertainty import REGROUND_LABEL
from app.pipeline.parsing import normalize_answer
from app.pipeline.profiles import load_profile
from app.pipeline.record import RunRecord
from app.pipeline.strategies import strategy_for
from app.pipeline.vocab import Mode

from coord_strategy import run_coord
from coord_support import QUESTION, CoordScript, plan, review


def _local_coordinator_replies(default_experts, action="choose", candidate="A2", final_answer=""):
    """No coordinator role: the (expert) VQA model coordinates, a local-model coordinator."""
    def replies(prompt, n_images, req):
        if "Task: choose which evidence" in prompt:
            return json.dumps(plan("crop", "mask", "global"))
        if "Task: for every candidate" in prompt:
            return json.dumps(review(action, candidate, final_answer=final_answer))
        return default_experts(prompt, n_images, req)
    return replies


@pytest.mark.parametrize("name, may_revise", [("care-paper", True), ("workstation", False), ("cpu-box", False),
                                              ("department", False), ("tiny", False)])
def test_profiles_review_only_unless_the_coordinator_is_the_papers_gpt5(name, may_revise):
    host = SimpleNamespace(profile=load_profile(name), device=None, dtype=None, max_new_tokens=None,
                           backend=lambda role: None)
    cfg = build_coordinator(host).config
    assert (cfg.may_revise, cfg.reground) == (may_revise, False)
    assert build_coordinator(host, may_revise=True, reground=True).config.reground is True


def test_default_remote_revises_and_local_does_not():
    """The default by backend kind when the profile does not say."""
    from app.pipeline.profiles import ModelSpec, Profile

    def host(backend):
        spec = ModelSpec(role="coordinator", backend=backend, repo_id="x", options={"endpoint": "https://h/v1"}
                         if backend == "remote" else {})
        return SimpleNamespace(profile=Profile("p", "", 0, {"coordinator": spec}), device=None, dtype=None,
                               max_new_tokens=None)

    assert build_coordinator(host("remote")).config.may_revise is True
    assert build_coordinator(host("internvl")).config.may_revise is False
    no_role = SimpleNamespace(profile=Profile("p", "", 0, {}), device=None, dtype=None, max_new_tokens=None,
                              backend=lambda role: None)
    assert build_coordinator(no_role).config.may_revise is False


@pytest.mark.slow
def test_local_coordinator_disagreement_is_a_finding_not_the_answer(make_pipeline, experts, default_experts,
                                                                   ct_volume, tumour, tmp_path):
    k, _ = tumour
    experts.set_responder(_local_coordinator_replies(default_experts))  # chooses A2 = "no"; the vote is "yes"
    record = run_coord(make_pipeline(None), ct_volume, k, QUESTION)
    assert record.status == "completed", record.errors
    assert [a.answer for a in record.answers] == ["yes", "no", "yes"] and record.vote.winner == "yes"
    assert record.final_answer == "yes"  # the experts' answer stands
    d = record.coordinator_decision
    assert (d.source, d.changed_vote, d.proposed_answer, d.vote_answer) == ("review", False, "no", "yes")
    rv = record.coordinator[-2].review
    assert "proposed 'no'" in rv.finding and "may_revise = false" in rv.finding and "'yes' stands" in rv.finding
    assert record.coordinator[-2].detail["finding"] == rv.finding
    assert record.coordinator[-1].detail["proposed_answer"] == "no"
    s = record.coordinator_settings
    assert (s.may_revise, s.reground) == (False, False)
    again = RunRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again.coordinator_decision == d and again.coordinator_settings == s
    # The presentation says so (the panel, PDF and CLI render it).
    from app.audit.present import build_presentation

    c = build_presentation(record).coordinator
    assert c.finding == rv.finding and c.decision_answer == "yes" and c.decision_changed is None
    assert "may revise: no" in c.options_text and f"{REGROUND_LABEL}: off" in c.options_text


@pytest.mark.slow
def test_local_coordinator_with_may_revise_changes_the_answer(make_pipeline, experts, default_experts, ct_volume,
                                                              tumour):
    k, _ = tumour
    experts.set_responder(_local_coordinator_replies(default_experts))
    pipeline = make_pipeline(None)
    strategy = strategy_for(Mode.COORD, pipeline, may_revise=True)
    record = pipeline.run(ct_volume, k, QUESTION, strategy=strategy)
    d = record.coordinator_decision
    assert record.final_answer == "no" and d.changed_vote and d.proposed_answer == ""
    assert all(not (e.review and e.review.finding) for e in record.coordinator)
    assert record.coordinator_settings.may_revise is True


@pytest.mark.slow
def test_regrounding_runs_only_when_enabled_and_is_labelled(make_pipeline, coord_server, default_experts, ct_volume,
                                                            tumour):
    k, _ = tumour
    default_experts.later = {"crop_1": ("Something dense near the hilum, hard to say.", "no", -1.2)}  # uncertain
    coord_server.set_responder(CoordScript([plan("crop")], [review("accept", "A1")]))
    record = run_coord(make_pipeline(coord_server), ct_volume, k, QUESTION)
    assert [e.kind for e in record.coordinator] == ["plan", "round", "review", "decision"]
    assert record.coordinator_settings.reground is False and len(record.answers) == 1

    default_experts.seen.clear()
    coord_server.set_responder(CoordScript([plan("crop")], [review("accept", "A1")]))
    record = run_coord(make_pipeline(coord_server, reground=True, max_extra_rounds=1), ct_volume, k, QUESTION)
    assert [e.kind for e in record.coordinator] == ["plan", "round", "reground", "round", "review", "decision"]
    assert record.coordinator[2].detail["label"] == REGROUND_LABEL
    assert REGROUND_LABEL == "entropy-guided re-grounding (heuristic after MedVR; not part of CARE)"
    from app.audit.present import build_presentation
    from app.audit.present.timeline import terminal_lines

    c = build_presentation(record).coordinator
    assert c.rows[2].summary.startswith(REGROUND_LABEL + ": uncertainty 1.20")
    assert any(line.strip().startswith(REGROUND_LABEL + ": next_entity") for line in terminal_lines(record))
    assert f"{REGROUND_LABEL}: on (uncertainty threshold 0.4)" in c.options_text


def test_change_statistic_matches_hand_computed_values():
    """20 constructed (before, after, truth) triples: 3 corrections, 2 erroneous, 2 neutral
    (one wrong->wrong, one right->right reworded), 13 unchanged."""
    yes = {"yes"}
    rul = {"right upper lobe", "rul"}  # two right wordings of one answer
    triples = (
        [("no", "yes", yes)] * 3  # wrong -> right
        + [("yes", "no", yes)] * 2  # right -> wrong
        + [("left lung", "right lung", rul), ("right upper lobe", "RUL", rul)]  # neutral: wrong->wrong, right->right
        + [("yes", "Yes.", yes)] * 10 + [("no", "no", yes)] * 3  # unchanged (same normalised answer)
    )
    stats = ChangeStats()
    kinds = []
    for before, after, truth in triples:
        def correct(text: str, truth=truth) -> bool:
            return normalize_answer(text) in truth

        kind = classify_change(before, after, correct, normalize_answer)
        kinds.append(kind)
        stats.add(kind)
    assert kinds.count(CORRECTION) == 3 and kinds.count(ERRONEOUS) == 2
    assert kinds.count(NEUTRAL) == 2 and kinds.count(UNCHANGED) == 13
    d = stats.to_dict()
    assert (d["n"], d["changed"], d["neutral"]) == (20, 5, 2)
    assert d["changed_pct"] == pytest.approx(25.0)  # (3 + 2) / 20, neutral not counted
    assert d["corrections_pct"] == pytest.approx(15.0) and d["erroneous_pct"] == pytest.approx(10.0)
    assert d["neutral_pct"] == pytest.approx(10.0) and d["net_gain_pct"] == pytest.approx(5.0)
    assert "7.89%" in d["definition"] and "reported apart" in d["definition"]
    text = stats.format()
    assert "changed 5 of 20 vote answers (25.00%" in text and "neutral, not counted as changed" in text
