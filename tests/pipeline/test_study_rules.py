"""The study-scope rules on their own: how evidence slices are chosen and how per-slice answers
aggregate (app.pipeline.study_scope.select / aggregate), and the scope line they produce."""
from __future__ import annotations

from app.audit.present.study import study_scope_text
from app.pipeline.record import InputInfo
from app.pipeline.study_record import EvidenceSlice, LocalisedSlice, StudyScope
from app.pipeline.study_scope.aggregate import CONFIDENT_PROB, aggregate
from app.pipeline.study_scope.localise import Localisation, evenly_spaced
from app.pipeline.study_scope.select import carry_boxes, choose
from app.pipeline.vocab import EntitySource, EvidenceSliceRole, LocaliseRoute, RunStatus, StudyRule


def _loc(scores: dict[int, tuple[int, float, bool]], pool: set[int] | None = None) -> Localisation:
    slices = [LocalisedSlice(k, k + 1, area if ok else 0, c, ok, "mass", (10, 10, 20, 20)) for k, (area, c, ok)
              in sorted(scores.items())]
    return Localisation(LocaliseRoute.SAMPLED_ENTITY_BOXES, "", slices, confident_pool=pool)


def test_the_largest_confident_cross_section_and_its_neighbours():
    loc = _loc({5: (300, 0.9, True), 10: (800, 0.8, True), 15: (900, 0.6, False)})
    chosen, why = choose(loc, asked_from=5, n=20)
    assert [c.index for c in chosen] == [10, 9, 11]  # 15 is larger but not confident
    assert chosen[0].role == EvidenceSliceRole.PRIMARY and chosen[0].area_px == 800
    assert all(c.role == EvidenceSliceRole.NEIGHBOUR for c in chosen[1:])
    assert "slice 11: largest confident cross-section" in why and "neighbours 10, 12" in why
    # Bounded, and only inside the lesion when the localisation has one (3-D route).
    assert [c.index for c in choose(loc, 5, 20, max_slices=5)[0]] == [10, 9, 11, 8, 12]
    assert [c.index for c in choose(_loc({3: (50, 0.8, True), 4: (90, 0.8, True), 9: (10, 0.9, True)},
                                         pool={3, 4, 9}), 0, 20)[0]] == [4, 3, 9]
    assert [c.index for c in choose(loc, 5, 11, max_slices=2)[0]] == [10, 9]  # the volume's end


def test_no_confident_slice_falls_back_to_the_slice_on_screen():
    chosen, why = choose(_loc({2: (0, 0.4, False), 8: (0, 0.5, False)}), asked_from=8, n=9)
    assert [c.index for c in chosen] == [8, 7, 6] and chosen[0].role == EvidenceSliceRole.FALLBACK  # the last slice
    assert "no slice looked at had a confident mask" in why


def test_neighbours_get_the_primary_box_named_as_carried():
    loc = _loc({10: (800, 0.8, True)})
    chosen, _ = choose(loc, 10, 20)
    boxes = carry_boxes(loc, chosen, seed_slice=None)
    assert set(boxes) == {9, 11}
    e = boxes[9][0]
    assert e.name == "mass (box from slice 11)" and e.source == EntitySource.LOCALISED and e.box == (10, 10, 20, 20)


def _slice(k: int, answer: str, prob: float | None, status: RunStatus = RunStatus.COMPLETED) -> EvidenceSlice:
    return EvidenceSlice(k, k + 1, EvidenceSliceRole.NEIGHBOUR, status=status, answer=answer, answer_prob=prob)


def test_yes_no_any_confident_positive():
    q = "Is there a mass in the left lung?"
    agg = aggregate(q, [_slice(4, "No.", 0.9), _slice(3, "No", 0.8), _slice(5, "Yes, a mass.", CONFIDENT_PROB)])
    assert agg.decided_by == StudyRule.CONFIDENT_POSITIVE and agg.winner == "yes" and agg.winner_raw == "Yes, a mass."
    assert agg.winner_slices == [5] and agg.counts == {"no": 2, "yes": 1}
    # An unconfident positive does not decide: the majority does.
    agg = aggregate(q, [_slice(4, "No.", 0.9), _slice(3, "No", 0.8), _slice(5, "Yes", CONFIDENT_PROB - 0.01)])
    assert agg.decided_by == StudyRule.MAJORITY and agg.winner == "no" and agg.winner_slices == [4, 3]


def test_open_questions_majority_then_confidence_then_primary():
    q = "Where is the lesion?"
    agg = aggregate(q, [_slice(1, "left lung", 0.2), _slice(2, "Left lung.", 0.3), _slice(3, "liver", 0.9)])
    assert agg.decided_by == StudyRule.MAJORITY and agg.winner == "left lung" and agg.winner_raw == "Left lung."
    agg = aggregate(q, [_slice(1, "left lung", 0.2), _slice(3, "liver", 0.9)])
    assert agg.decided_by == StudyRule.TIE_BY_CONFIDENCE and agg.winner == "liver" and agg.tied == ["left lung", "liver"]
    agg = aggregate(q, [_slice(1, "left lung", None), _slice(3, "liver", None)])
    assert agg.decided_by == StudyRule.TIE_BY_PRIMARY and agg.winner == "left lung"  # the first that ran


def test_unanswered_slices_do_not_vote():
    agg = aggregate("Is there a mass?", [_slice(1, "", None), _slice(2, "Yes", 0.9, RunStatus.FAILED)])
    assert agg.decided_by == StudyRule.NO_ANSWERS and agg.winner == "" and agg.inputs == []


def test_the_scope_line_names_the_answered_slices():
    study = StudyScope(asked_from_slice=12, num_slices=61, plane="axial",
                       slices=[_slice(12, "yes", 0.9), _slice(11, "no", 0.9), _slice(13, "", None, RunStatus.FAILED)])
    inp = InputInfo(num_slices=61, plane="axial")
    assert study_scope_text(study, inp) == "about the whole study (evidence from axial slices 12, 13 of 61)"
    study.slices = study.slices[:1]
    assert study_scope_text(study, inp) == "about the whole study (evidence from axial slice 13 of 61)"
    study.slices = []
    assert study_scope_text(study, inp) == "about the whole study (no evidence slice gave a usable answer)"
    # Once aggregated, the line names the slices the aggregation counted: not one without an answer.
    study.slices = [_slice(12, "", None), _slice(11, "no", 0.9), _slice(13, "No.", 0.8)]
    study.aggregation = aggregate("Is there a mass?", study.slices)
    assert study_scope_text(study, inp) == "about the whole study (evidence from axial slices 12, 14 of 61)"


def test_sampled_slices_are_evenly_spaced_without_the_ends():
    assert evenly_spaced(48, 5, ends=False) == [8, 16, 24, 31, 39]
    assert evenly_spaced(4, 5, ends=False) == [0, 1, 2, 3]
    assert evenly_spaced(61, 24, ends=True)[0] == 0 and evenly_spaced(61, 24, ends=True)[-1] == 60


def test_study_scope_on_a_single_image_is_a_usage_error(empty_models_dir, ct_volume, tmp_path, capsys):
    import cv2

    from app.cli.main import main
    from app.study.display import slice_rgb

    png = tmp_path / "ct.png"
    cv2.imwrite(str(png), slice_rgb(ct_volume, 20)[:, :, ::-1])
    out = tmp_path / "run"
    assert main(["ask", str(png), "-q", "Is there a mass?", "--profile", "tiny", "--scope", "study",
                 "--out", str(out)]) == 1
    assert "--scope study needs a series of more than one slice" in capsys.readouterr().err
    assert not out.exists()
