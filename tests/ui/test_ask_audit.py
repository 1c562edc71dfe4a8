"""Ask and audit from the GUI, end to end on the real chest CT with the tiny profile
(real transformers code on tiny random checkpoints, real LiteMedSAM on the drawn boxes)."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from tests.ui.care_session import (
    QUESTION,
    TUMOUR_BOX,
    TUMOUR_SLICE,
    mask_centre,
    screen_point,
    settle,
)
from tests.ui.ui_helpers import grab_rgb

pytestmark = pytest.mark.slow


def ask(qtbot, care, question=QUESTION, timeout=120_000):
    care.ask.set_question(question)
    assert care.ask.run_button.isEnabled()
    with qtbot.waitSignal(care.run_finished, timeout=timeout) as sig:
        qtbot.mouseClick(care.ask.run_button, Qt.MouseButton.LeftButton)
    return sig.args[0]


def draw_box(qtbot, care, box):
    """Left-drag the box on the view with the Draw box tool; waits for LiteMedSAM."""
    view = care.view
    if not care.draw_tool.active:  # the tool stays on between boxes
        care.audit.draw_button.click() if care.audit.record is not None else care.act_draw.setChecked(True)
    assert care.draw_tool.active
    a = screen_point(view, box[0], box[1])
    b = screen_point(view, box[2] - 1, box[3] - 1)
    with qtbot.waitSignal(care.box_segmented, timeout=60_000) as sig:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
        qtbot.mouseMove(view, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
        qtbot.mouseMove(view, b)
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    return sig.args[0]


def test_run_end_to_end_fills_the_audit_and_draws_overlays(qtbot, care):
    view = care.view
    assert view.slice_index == TUMOUR_SLICE
    baseline = grab_rgb(view)
    # A box drawn before asking is segmented at once and joins the next question on this slice.
    out = draw_box(qtbot, care, TUMOUR_BOX)
    assert out.mask is not None and out.mask.backend == "litemedsam" and out.mask.area_px > 100
    assert "1 drawn box" in care.ask.target.text()
    care.act_draw.setChecked(False)

    outcome = ask(qtbot, care)
    rec = outcome.record
    assert rec is not None and rec.status == "completed" and outcome.persisted, (outcome.error, rec and rec.errors)
    assert rec.input.slice_index == TUMOUR_SLICE and rec.question == QUESTION
    # The displayed window is what the models saw.
    assert rec.input.window["center"] == view.window.center and rec.input.window["width"] == view.window.width
    # Ask panel: every stage done, the CPU warning shown as a warning (not an error).
    assert all(care.ask.stages.state(s) == "done" for s in care.ask.stages.chips)
    assert care.ask.message_level == "warning" and "No GPU" in care.ask.message_text()

    panel = care.audit
    names = [panel.entity_list.item(i).text() for i in range(panel.entity_list.count())]
    assert any(n.startswith("clinician region 1") for n in names)
    assert [r.entry.mask.entity for r in panel.mask_rows] == [m.entity for m in rec.masks]
    assert len(panel.answer_sections) == len(rec.answers) == 3
    assert panel.vote_table.rowCount() == 3
    assert "CARE-Flow: no coordinator" in _texts(panel.sec_coord)
    assert "Decision support only" in panel.disclaimer.text()
    prov = _texts(panel.sec_prov)
    assert "litemedsam" in prov and "cpu/float32" in prov and rec.models["vqa"].weights_sha256[:12] in prov

    # The clinician mask is on the view (the pending preview is gone) and changes pixels.
    idx = next(i for i, m in enumerate(rec.masks) if m.entity == "clinician region 1")
    mask = rec.masks[idx]
    assert mask.backend == "litemedsam" and mask.box == TUMOUR_BOX and mask.accepted
    key = f"care:mask:{idx}"
    assert key in view.overlays and not any(n.startswith("box:pending") for n in view.overlays.names())
    cx, cy = mask_centre(mask.mask)
    p = screen_point(view, cx, cy)
    shown = grab_rgb(view)
    assert not np.array_equal(shown[p.y(), p.x()], baseline[p.y(), p.x()])
    # Hiding it restores the pixels.
    panel.row(key).visible_box.setChecked(False)
    hidden = grab_rgb(view)
    assert np.array_equal(hidden[p.y(), p.x()], baseline[p.y(), p.x()])
    panel.row(key).visible_box.setChecked(True)
    # Opacity slider reaches the layer.
    panel.row(key).opacity.setValue(80)
    assert view.overlays.get(key).opacity == pytest.approx(0.8)
    # The zoom-in crop rectangle is drawn on the slice.
    crop = [n for n in view.overlays.names() if n.startswith("care:crop")]
    assert crop and tuple(view.overlays.get(crop[0]).rect) == tuple(rec.evidence[0].crop_rect)
    # Clicking an entity highlights its mask (outline while flashing) on its slice.
    view.set_slice(0)
    item = next(panel.entity_list.item(i) for i in range(panel.entity_list.count())
                if panel.entity_list.item(i).text().startswith("clinician region 1"))
    panel.entity_list.itemClicked.emit(item)
    assert view.slice_index == TUMOUR_SLICE and view.overlays.get(key).outline
    qtbot.waitUntil(lambda: not view.overlays.get(key).outline, timeout=3000)

    # Persisted with the store, and listed in the history.
    settle(qtbot, care)
    runs = care.store.list_runs(rec.input.study_uid)
    assert [r.run_id for r in runs] == [rec.run_id] and runs[0].status == "completed"
    assert care.history.run_ids() == [rec.run_id]
    # The question joined the persisted history of recent questions.
    assert care.ask.recent_questions()[0] == QUESTION


def test_cancel_records_a_cancelled_run(qtbot, care):
    care.ask.set_question("Is the heart enlarged?")
    cancelled_at = []

    def on_progress(p):
        if not cancelled_at:
            cancelled_at.append(p.stage)
            qtbot.mouseClick(care.ask.cancel_button, Qt.MouseButton.LeftButton)

    # The run starts once the audit trail is open (off the GUI thread): listen from its start.
    care.run_started.connect(lambda handle: handle.signals.partial.connect(on_progress))
    with qtbot.waitSignal(care.run_finished, timeout=120_000) as sig:
        qtbot.mouseClick(care.ask.run_button, Qt.MouseButton.LeftButton)
    outcome = sig.args[0]
    rec = outcome.record
    assert rec.status == "cancelled" and outcome.persisted
    assert rec.vote is None and rec.final_answer == ""
    runs = care.store.list_runs()
    assert runs[0].run_id == rec.run_id and runs[0].status == "cancelled"
    assert care.ask.status.text().startswith("Cancelled")
    assert any(care.ask.stages.state(s) == "stopped" for s in care.ask.stages.chips)
    assert care.ask.run_button.isEnabled() and not care.ask.cancel_button.isEnabled()


def test_missing_weights_show_the_install_command_and_the_app_stays_usable(qtbot, care, tmp_path, monkeypatch):
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("CARE_MODELS_DIR", str(empty))
    from app.ui.run_worker import PipelineCache

    care.pipelines = PipelineCache()  # fresh pipelines that look in the empty folder
    care.ask.reload_profiles()
    care.ask.set_profile("tiny")
    assert "not installed" in care.ask.profile.currentText()
    outcome = ask(qtbot, care, "Is there a pleural effusion?")
    assert outcome.record is None and outcome.error_kind == "weights"
    text = care.ask.message_text()
    assert care.ask.message.isVisible() and care.ask.message_level == "error"
    assert "care-viewer models fetch tiny" in text and "care-viewer models import" in text
    assert "Traceback" not in text
    # Still usable: the viewer scrolls, and Ask is available again.
    care.view.set_slice(10)
    assert care.view.slice_index == 10 and care.ask.run_button.isEnabled()
    assert care.store.list_runs() == []  # nothing ran, nothing half-recorded


def test_discard_and_drawn_box_are_overrides_and_reask_links_the_runs(qtbot, care):
    first = ask(qtbot, care).record
    assert first.status == "completed"
    panel = care.audit
    kinds = []
    if first.masks:  # a proposed entity's text-prompted mask: discard it
        panel.mask_rows[0].discard.click()
        kinds.append("mask_discard")

    # Draw a box around the tumour: LiteMedSAM segments it into a new mask with its confidence.
    out = draw_box(qtbot, care, TUMOUR_BOX)
    m = out.mask
    assert m is not None and m.backend == "litemedsam" and m.prompt_type == "box" and 0 <= m.confidence <= 1
    assert m.mask.sum() == m.area_px > 100
    drawn = [e for e in panel.entries if e.index is None]
    assert len(drawn) == 1 and drawn[0].key in care.view.overlays
    # A second box somewhere else, then discarded by the clinician.
    out2 = draw_box(qtbot, care, (300, 250, 340, 290))
    assert out2.mask is not None
    row2 = panel.mask_rows[-1]
    row2.discard.click()
    assert row2.entry.discarded and not care.view.overlays.get(row2.entry.key).visible
    assert row2.name.font().strikeOut()

    settle(qtbot, care)  # the overrides are appended off the GUI thread
    ovr = care.store.overrides(first.run_id)
    assert [o.kind for o in ovr] == kinds + ["box_added", "box_added", "mask_discard"]
    added = [o for o in ovr if o.kind == "box_added"]
    assert added[0].detail["new"] == list(out.box) and "litemedsam" in added[0].detail["note"]
    assert ovr[-1].detail["new"] == "discarded" and ovr[-1].detail["target"].startswith("drawn box")
    assert "you drew a box" in _texts(panel.sec_overrides)  # plain words, not the store's kind

    # Re-ask with the edited evidence: only the kept box goes in, as a new linked run.
    with qtbot.waitSignal(care.run_finished, timeout=120_000) as sig:
        panel.reask_button.click()
    second = sig.args[0].record
    assert second.status == "completed" and second.run_id != first.run_id
    settle(qtbot, care)
    assert [e.box for e in second.entities.final if e.source == "clinician"] == [out.box]
    boxed = [x for x in second.masks if x.backend == "litemedsam"]
    assert len(boxed) == 1 and boxed[0].accepted == m.accepted
    if first.masks:
        assert first.masks[0].entity in second.entities.discarded
    runs = {r.run_id: r for r in care.store.list_runs()}
    assert runs[second.run_id].parent_run_id == first.run_id
    # The original run is unchanged; the re-ask itself is one more override on it.
    stored_first, overrides = care.store.load_run(first.run_id)
    assert stored_first.to_dict() == first.to_dict()
    assert [o.kind for o in overrides][-1] == "reask" and overrides[-1].detail["new"] == second.run_id
    assert runs[first.run_id].overrides == len(kinds) + 4


def _texts(section) -> str:
    from PySide6.QtWidgets import QLabel

    return "\n".join(lab.text() for lab in section.findChildren(QLabel))


def test_a_box_drawn_over_a_run_joins_a_new_question_on_that_slice(qtbot, care):
    """Drawing a box over the shown run, then asking a new question (Ask, not Re-ask), must not
    lose the box: the new run gets it as a clinician entity, and the target line says so."""
    first = ask(qtbot, care).record
    assert first.status == "completed"
    out = draw_box(qtbot, care, TUMOUR_BOX)
    assert out.mask is not None
    care.act_draw.setChecked(False)
    assert "1 drawn box included" in care.ask.target.text()
    assert "new question on this slice uses the new boxes" in care.audit.edits_label.text()
    # Discarded, it stays out; restored, it is back in.
    row = care.audit.mask_rows[-1]
    row.discard.click()
    assert "drawn box" not in care.ask.target.text()
    row.discard.click()
    assert "1 drawn box included" in care.ask.target.text()
    second = ask(qtbot, care, "Is the mass larger than 3 cm?").record
    assert second.status == "completed" and second.question == "Is the mass larger than 3 cm?"
    assert [e.box for e in second.entities.final if e.source == "clinician"] == [out.box]
    assert any(m.backend == "litemedsam" for m in second.masks)
    # Used now: the box is in the new run, and a third question no longer counts it as drawn.
    assert "drawn box" not in care.ask.target.text()


def test_a_run_does_not_widen_the_audit_panel(qtbot, care):
    """Seen in a walk: after a run the Audit dock's minimum width grew from 409 to 493 px (the
    header's status line did not wrap), widening the whole right-hand column."""
    before = care.audit.minimumSizeHint().width()
    rec = ask(qtbot, care).record
    assert rec is not None and rec.status == "completed"
    qtbot.wait(100)
    assert care.audit.header.status_label.text().count("\u00b7") >= 4  # status · time · slice · profile · mode
    assert care.audit.minimumSizeHint().width() <= before
