"""The run's presentation (app.audit.present) on a real tiny-profile run, and the three
renderers that lay it out: the audit panel, the PDF report and the terminal summary must
show the same strings for the answer, the vote, the coordinator timeline and the disclaimer."""
from __future__ import annotations

import copy
import dataclasses
import html
import re

import pytest
from pypdf import PdfReader

from app.audit import audit_view_model as vm
from app.audit.present import DISCLAIMER, build_presentation, elide, fmt_local_minute, fmt_prob, fmt_time
from app.audit.present.formatting import printable
from app.audit.report import build_report
from app.cli.ask_cmd import coordinator_lines, format_summary
from app.pipeline.record import (
    CoordDecision, CoordinatorEvent, CoordPlan, CoordReGround, CoordReview, CoordRound, CoordSettings, Override,
)
from app.pipeline.types import EvidenceType
from app.pipeline.vocab import OverrideKind


def _alnum(text: str) -> str:
    """Letters and digits only: each renderer wraps, escapes and elides differently (and the
    PDF drops control characters a tiny model may write), the words themselves must match."""
    # The CLI writes a control character as a visible escape (\u0007): an escape is not a word.
    text = re.sub(r"\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}", "", text)
    return re.sub(r"[^0-9A-Za-z]", "", text)


def _panel_text(panel) -> str:
    from PySide6.QtWidgets import QAbstractButton, QLabel, QListWidget, QTableWidget

    parts = []
    for w in panel.findChildren(object):
        if isinstance(w, QLabel):
            parts.append(html.unescape(re.sub(r"<[^>]+>", " ", w.text())))
        elif isinstance(w, QAbstractButton):
            parts.append(w.text())
        elif isinstance(w, QListWidget):
            parts += [w.item(i).text() for i in range(w.count())]
        elif isinstance(w, QTableWidget):
            parts += [w.item(i, j).text() for i in range(w.rowCount()) for j in range(w.columnCount())]
    return "\n".join(parts)


class _NoOverlays:
    def names(self):
        return []

    def __contains__(self, key):
        return False


class _View:
    overlays, volume = _NoOverlays(), None


def _coord_variant(record):
    """The real run as CARE-Coord would have recorded it: a typed timeline and a decision."""
    r = copy.deepcopy(record)
    r.mode = "coord"
    t = "2025-03-15T10:20:4%d+00:00"
    d = CoordDecision(final_answer=r.final_answer or "No", source="review", candidate="A2", rests_on=["A2"],
                      vote_answer="Yes", changed_vote=True)
    r.coordinator = [
        CoordinatorEvent(t % 0, "plan", {"evidence": "crop, global"},
                         plan=CoordPlan([EvidenceType.CROP, EvidenceType.GLOBAL], "look closer")),
        CoordinatorEvent(t % 1, "round", {"round": 0}, round=CoordRound(0, [EvidenceType.CROP], reason="plan")),
        CoordinatorEvent(t % 2, "reground", {"round": 0},
                         reground=CoordReGround(0, 0.83, 0.4, ["A1"], "looser_crop", reason="uncertain")),
        CoordinatorEvent(t % 3, "round", {"round": 1}, round=CoordRound(1, [EvidenceType.CROP], reason="looser")),
        CoordinatorEvent(t % 4, "review", {"action": "choose"},
                         review=CoordReview(1, [], "choose", "A2", "No", ["A2"], "A2 is best")),
        CoordinatorEvent(t % 5, "decision", {"source": "review"}, decision=d),
    ]
    r.coordinator_decision = d
    r.coordinator_settings = CoordSettings(may_revise=True, reground=True, uncertainty_threshold=0.4)
    return r


def _coord_kept_variant(record):
    """CARE-Coord with revising off (a local coordinator): the review proposed "No", the
    experts' "Yes" stands and the disagreement is a finding."""
    r = _coord_variant(record)
    r.coordinator = [e for e in r.coordinator if e.kind in ("plan", "review") or (e.round and e.round.round == 0)]
    finding = "the coordinator disagrees with the experts: it proposed 'No' (chose A2); the vote answer 'Yes' stands"
    r.coordinator[-1].review.finding = finding
    d = CoordDecision(final_answer="Yes", source="review", candidate="A2", rests_on=["A2"], vote_answer="Yes",
                      changed_vote=False, proposed_answer="No")
    r.coordinator.append(CoordinatorEvent("2025-03-15T10:20:45+00:00", "decision", {"source": "review"}, decision=d))
    r.coordinator_decision, r.final_answer = d, "Yes"
    r.coordinator_settings = CoordSettings(may_revise=False, reground=False)
    return r


def _tied_vote(record):
    """The real run with its vote recorded as a tie broken by probability (the detail line shows)."""
    r = copy.deepcopy(record)
    assert r.vote is not None
    r.vote.tie_break = "mean_prob"
    r.vote.detail = "tie between crop and global broken by the mean answer-token probability 0.42"
    return r


@pytest.fixture(scope="module")
def rendered(real_run, tmp_path_factory, qapp):
    """{name: (record, presentation, panel text, pdf pages, terminal text)} for the real run,
    its tied-vote and its CARE-Coord variants."""
    from app.ui.audit_panel import AuditPanel

    record, patient = real_run
    override = Override.stored(record.run_id, 1, "2025-03-16T08:00:00+00:00", "final_answer",
                               {"target": "final_answer", "old": record.final_answer, "new": "No mass",
                                "note": "prior CT"}, "dr.a")
    out = {}
    panel = AuditPanel(_View())
    for name, rec in (("run", record), ("tied", _tied_vote(record)), ("coord", _coord_variant(record)),
                      ("coord_kept", _coord_kept_variant(record))):
        pres = build_presentation(rec, [override])
        panel.show_record(rec, [override], on_view=False)
        pdf = tmp_path_factory.mktemp("present") / f"{name}.pdf"
        build_report(rec, pdf, overrides=[override], patient=patient)
        pages = [p.extract_text() or "" for p in PdfReader(str(pdf)).pages]
        out[name] = (rec, pres, _panel_text(panel), pages, format_summary(rec))
    panel.deleteLater()
    return out


def test_presentation_is_frozen_typed_rows(real_run):
    record, _ = real_run
    p = build_presentation(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.header.answer = "changed"  # type: ignore[misc]
    assert p.disclaimer == DISCLAIMER
    assert p.header.mode_label == "CARE-Flow" and p.header.status_label == "Answered"
    assert [m.entity for m in p.masks] == [m.entity for m in record.masks]
    assert [m.accepted for m in p.masks] == [m.accepted for m in record.masks]
    assert [v.prob2 for v in p.vote.rows] == [fmt_prob(v.mean_prob) for v in record.vote.votes]
    assert [a.evidence for a in p.answers] == [a.evidence for a in record.answers]
    assert p.header.created == fmt_time(record.created)
    assert p.coordinator.rows == () and p.coordinator.empty_text == "CARE-Flow: no coordinator."


def test_disclaimer_is_one_text_in_panel_and_report(rendered):
    _, _, panel, pages, _ = rendered["run"]
    assert _alnum(DISCLAIMER) in _alnum(panel)
    assert all(_alnum(DISCLAIMER) in _alnum(page) for page in pages)


def test_answer_reads_the_same_in_all_three(rendered):
    rec, p, panel, pages, cli = rendered["run"]
    pdf = "".join(pages)
    assert p.header.answer, "the tiny run must answer"
    head = _alnum(p.header.answer_short.rstrip("\u2026"))[:120]
    for shown in (panel, pdf, cli):
        assert head in _alnum(shown)
    assert f"answer: {printable(elide(rec.final_answer, 200, trim=False))}" in cli  # control characters escaped
    # The clinician's override of the answer is in the panel and the report alike.
    for shown in (panel, pdf):
        assert "dr.a" in shown and "No mass" in shown


def test_vote_rows_and_detail_read_the_same_in_all_three(rendered):
    rec, p, panel, pages, cli = rendered["tied"]
    pdf = "".join(pages)
    assert p.vote is not None and len(p.vote.rows) == len(rec.vote.votes) == 3
    for row in p.vote.rows:
        assert row.terminal in cli  # "  crop    'Yes'  p=0.873"
        assert row.prob3 in panel and row.prob2 in pdf
    assert p.vote.tie_rule == "tie broken by the mean answer-token probability"
    detail = _alnum(p.vote.detail)
    for shown in (panel, pdf, cli):
        assert detail in _alnum(shown)
    assert p.vote.tie_rule in panel


def test_coordinator_timeline_reads_the_same_in_all_three(rendered):
    rec, p, panel, pages, cli = rendered["coord"]
    pdf = "".join(pages)
    rows = p.coordinator.rows
    assert [r.kind for r in rows] == ["plan", "round", "reground", "round", "review", "decision"]
    assert rows[2].summary == ("entropy-guided re-grounding (heuristic after MedVR; not part of CARE): "
                               "uncertainty 0.83 vs 0.40 -> looser_crop (uncertain)")
    options = p.coordinator.options_text
    assert "may revise: yes" in options and "not part of CARE): on (uncertainty threshold 0.4)" in options
    for shown in (panel, pdf, cli):
        assert _alnum(options) in _alnum(shown)
    for r in rows:  # the panel's line per event; the report's time, step and detail
        assert f"{r.time} {r.kind} {r.summary}" in " ".join(panel.split())
        assert _alnum(r.time + r.kind + r.detail_json) in _alnum(pdf)
    assert list(p.coordinator.terminal_lines) == coordinator_lines(rec)
    for line in p.coordinator.terminal_lines:
        assert line in cli
    assert "coordinator changed the vote answer 'Yes'" in cli
    assert f"Decided by {p.coordinator.decision_by}" in panel and "differs from the vote: Yes" in panel


def test_coordinator_options_and_finding_read_the_same_in_all_three(rendered):
    rec, p, panel, pages, cli = rendered["coord_kept"]
    pdf = "".join(pages)
    c = p.coordinator
    assert "may revise: no" in c.options_text and "not part of CARE): off" in c.options_text
    assert c.finding == rec.coordinator[2].review.finding and "proposed 'No'" in c.finding
    assert c.decision_answer == "Yes" and c.decision_changed is None
    for shown in (panel, pdf, cli):
        assert _alnum(c.options_text) in _alnum(shown)
        assert _alnum(c.finding) in _alnum(shown)
    assert "re-grounding" not in " ".join(r.summary for r in c.rows)


def test_one_override_type_for_record_store_and_views(real_run):
    record, _ = real_run
    o = Override.stored("r1", 3, "2025-03-16T08:00:00+00:00", "mask_reject",
                        {"target": "masks[0]", "old": True, "new": False}, "dr.b")
    assert o.kind is OverrideKind.MASK_REJECT and (o.old, o.new, o.who, o.seq) == ("true", "false", "dr.b", 3)
    assert Override.stored("r1", 1, "t", "future_kind").kind == "future_kind"  # an unknown row is kept
    rec = copy.deepcopy(record)
    rec.overrides = [o]
    # run.json keeps the record Override's six keys; the store's row fields stay out of it.
    assert set(rec.to_dict()["overrides"][0]) == {"time", "author", "target", "old", "new", "note"}
    row = build_presentation(rec).overrides[0]
    assert (row.kind, row.target, row.change, row.who) == ("mask_reject", "masks[0]", "true \u2192 false", "dr.b")


def test_view_model_discards_and_edited_evidence(real_run):
    record, _ = real_run
    clin = next(e for e in record.entities.final if e.source == "clinician" and e.box is not None)
    i = next(i for i, m in enumerate(record.masks) if m.entity == clin.name)
    discard = Override.stored(record.run_id, 1, "t", "mask_discard", {"target": f"masks[{i}]"})
    entries = vm.run_entries(record, [discard])
    assert entries[i].discarded and not entries[i].shown_by_default
    assert [e.key for e in entries] == [vm.mask_key(k) for k in range(len(record.masks))]
    restore = Override.stored(record.run_id, 2, "t", "mask_restore", {"target": f"masks[{i}]"})
    assert not any(e.discarded for e in vm.run_entries(record, [discard, restore]))
    assert vm.has_edits(entries) and vm.edits_text(entries).startswith("Edited evidence: 1 mask discarded")
    boxes, discarded = vm.edited_evidence(record, entries)
    assert tuple(clin.box) not in boxes and clin.name not in discarded  # a drawn region goes by its box
    assert vm.edited_evidence(record, vm.run_entries(record))[0] == [tuple(clin.box)]
    drawn = vm.drawn_entry(entries, record.masks[0], 3, (1, 2, 3, 4))
    assert drawn.key == vm.drawn_key(0) and drawn.color not in {e.color for e in entries}
    assert vm.edited_evidence(record, [*entries, drawn])[0][-1] == (1, 2, 3, 4)


def test_history_table_time_is_the_shared_formatter():
    from app.audit.store import RunSummary
    from app.cli.history_cmd import format_table

    s = RunSummary("0123456789ab", "2025-03-15T10:20:30+00:00", "", "completed", "1.2", "", 0, "q", "flow",
                   "tiny", "a", None, 0)
    assert fmt_local_minute(s.created) in format_table([s])


def _viewer_overrides(run_id: str) -> list[Override]:
    """The rows the viewer writes (app/ui/clinician_edits.py, run_control.py), as stored."""
    t = "2025-03-16T08:0{}:00+00:00"
    return [
        Override.stored(run_id, 1, t.format(1), "mask_discard", {
            "target": "masks[0]", "old": "accepted", "new": "discarded", "note": "right lung (C=0.781)"}, "dr.a"),
        Override.stored(run_id, 2, t.format(2), "mask_restore", {
            "target": "masks[0]", "old": "discarded", "new": "accepted", "note": "right lung (C=0.781)"}, "dr.a"),
        Override.stored(run_id, 3, t.format(3), "box_added", {
            "target": "clinician region 1", "old": "", "new": [120, 80, 190, 150],
            "note": "litemedsam mask on slice 34: C=0.780 (accepted), 2210 px"}, "dr.a"),
        Override.stored(run_id, 4, t.format(4), "mask_discard", {
            "target": "drawn box 0", "old": "accepted", "new": "discarded",
            "note": "clinician region 1 (C=0.780)"}, "dr.a"),
        Override.stored(run_id, 5, t.format(5), "reask", {
            "target": "run", "old": run_id, "new": "abcdef123456",
            "note": "re-asked with 1 box(es), discarded: right lung"}, "dr.a"),
    ]


def test_overrides_read_in_plain_words_in_panel_and_report(real_run, tmp_path, qapp):
    from app.ui.audit_panel import AuditPanel

    record, patient = real_run
    ov = _viewer_overrides(record.run_id)
    rows = build_presentation(record, ov).overrides
    assert [r.sentence for r in rows] == [
        "you discarded mask 1 (right lung, C 0.78)",
        "you restored mask 1 (right lung, C 0.78)",
        "you drew a box (120, 80)\u2013(190, 150) on slice 34 \u2192 LiteMedSAM mask C 0.78 (accepted) "
        "for clinician region 1",
        "you discarded drawn box 1 (clinician region 1, C 0.78)",
        "you re-asked with 1 box (new run abcdef123456); discarded: right lung",
    ]
    # An unknown kind (a newer version's row) still reads as what it stored.
    odd = Override.stored(record.run_id, 6, "t", "future_kind", {"target": "x", "old": "a", "new": "b"})
    assert build_presentation(record, [odd]).overrides[0].sentence == "future_kind x a \u2192 b"

    panel = AuditPanel(_View())
    panel.show_record(record, ov, on_view=False)
    shown = " ".join(_panel_text(panel).split())
    pdf = tmp_path / "ov.pdf"
    build_report(record, pdf, overrides=ov, patient=patient)
    report = _alnum("".join(p.extract_text() or "" for p in PdfReader(str(pdf)).pages))
    for r in rows:
        assert r.sentence in shown
        assert _alnum(r.sentence) in report
    assert "mask_discard" not in shown and "masks[0]" not in shown and "box_added" not in shown
    panel.deleteLater()


def test_a_reply_without_matched_tokens_says_why_its_probability_is_missing(real_run):
    """A remote reply whose tokens could not be matched to its text keeps no per-token figures;
    the answer's facts say why instead of leaving a bare '-'."""
    original, _ = real_run
    record = copy.deepcopy(original)
    answer = record.answers[0]
    call = record.calls[answer.call_index]
    call.tokens, call.token_logprobs = [], []
    call.tokens_note = "its tokens do not make up its text (server reply): no token figures kept"
    answer.mean_answer_prob = None
    facts = dict(build_presentation(record).answers[0].facts)
    assert facts["Mean answer-token probability"] == fmt_prob(None)
    assert facts["Token probabilities"] == call.tokens_note
    assert "Token probabilities" not in dict(build_presentation(original).answers[0].facts)
    # The note survives the run record's JSON round trip.
    from app.pipeline.record import RunRecord

    assert RunRecord.from_dict(record.to_dict()).calls[answer.call_index].tokens_note == call.tokens_note


def test_mask_note_names_the_tau_each_mask_was_judged_by(real_run):
    """The run-level tau is the 0.70 default; a LiteMedSAM mask is judged by its profile's 0.77.
    The note must name the latter, and say nothing about a threshold when no mask was made."""
    from app.audit.present.build import mask_note

    original, _ = real_run
    record = copy.deepcopy(original)
    assert record.masks
    for m in record.masks:
        m.tau = 0.77
    note = mask_note(record)
    assert "0.77" in note and "0.70" not in note
    record.masks = []
    note = mask_note(record)
    assert "No mask was made" in note and "0.70" not in note and "\u03c4 =" not in note
