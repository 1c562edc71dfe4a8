"""The question field stays in view: a finished, failed or cancelled run (its CPU warning, its
status line, its message) never scrolls the Ask panel away from the question, and the panel does
not jump while a run reports progress. Real window, real tiny-profile runs on the shared CT."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt

from tests.ui.care_session import QUESTION, without_weights

pytestmark = pytest.mark.slow

ASK_DOCK_HEIGHT = 220  # a short Ask dock above a tall Audit dock, as a radiologist leaves it


def _short_ask_dock(qtbot, care) -> None:
    w = care.window
    w.resizeDocks([care.ask_dock, care.audit_dock], [ASK_DOCK_HEIGHT, 900], Qt.Orientation.Vertical)
    w.resizeDocks([care.ask_dock], [330], Qt.Orientation.Horizontal)
    qtbot.wait(50)


def _whole_in_view(widget, dock) -> bool:
    """Nothing of the widget is clipped by the panel's scroll area (or anything else between it
    and the window), and it lies inside the dock."""
    visible = widget.visibleRegion().boundingRect()
    inside_dock = dock.rect().contains(QRect(widget.mapTo(dock, QPoint(0, 0)), widget.size()))
    return widget.isVisible() and visible == widget.rect() and inside_dock


def _question_top(care) -> int:
    return care.ask.question.mapTo(care.ask_dock, QPoint(0, 0)).y()


def _ask(qtbot, care, question=QUESTION, *, enter: bool = False):
    """Ask with a click on Ask, or with Enter in the question field."""
    care.ask.set_question(question)
    with qtbot.waitSignal(care.run_finished, timeout=120_000) as sig:
        if enter:
            qtbot.keyClick(care.ask.question.lineEdit(), Qt.Key.Key_Return)
        else:
            qtbot.mouseClick(care.ask.run_button, Qt.MouseButton.LeftButton)
    qtbot.wait(100)  # the deferred layout and any scroll it triggers
    return sig.args[0]


def test_a_finished_cpu_run_keeps_the_question_in_view(qtbot, care):
    _short_ask_dock(qtbot, care)
    assert care.ask_dock.height() < 300
    panel = care.ask
    assert _whole_in_view(panel.question, care.ask_dock)
    top = _question_top(care)
    width = care.ask_dock.width()
    # A long recent question (in the field's list) must not widen the dock either.
    panel.remember_question("Is there " + "a-very-long-unbroken-description-" * 12 + "mass?")
    bar = panel.scroll_area.verticalScrollBar()
    start = bar.value()
    tops: list[int] = []
    scrolls: list[int] = []
    care.run_started.connect(lambda handle: handle.signals.partial.connect(lambda _p: scrolls.append(bar.value())))
    care.run_started.connect(lambda handle: handle.signals.partial.connect(
        lambda _p: tops.append(_question_top(care))))

    outcome = _ask(qtbot, care)
    rec = outcome.record
    assert rec is not None and rec.status == "completed", outcome.error
    # This machine has no GPU: the run says so in the panel, wrapped, no wider than the dock.
    assert any("on cpu" in w.lower() for w in rec.warnings)
    assert panel.message.isVisible() and panel.message_text().startswith("No GPU")
    assert panel.message.wordWrap() and panel.message.width() <= panel.scroll_area.viewport().width()
    assert panel.status.text().startswith("Answered in ")
    assert tops and set(tops) == {top}  # no jump while the run reports progress
    assert set(scrolls) == {start}  # nor does the section below it
    # Nothing in the panel asks for more width than the dock had (the Audit dock beside it may).
    assert panel.minimumSizeHint().width() <= width and panel.question.width() <= panel.width()
    assert _question_top(care) == top
    assert _whole_in_view(panel.question, care.ask_dock)
    assert _whole_in_view(panel.run_button, care.ask_dock)

    # Asking again is one Enter away: the focus went from Ask to Cancel while it ran (not down the
    # tab chain, which scrolled the panel) and back to the question when it ended.
    assert panel.question.lineEdit().hasFocus()
    again = _ask(qtbot, care, "Is there a pleural effusion?", enter=True)
    assert again.record is not None and again.record.status == "completed"
    assert _whole_in_view(panel.question, care.ask_dock) and _question_top(care) == top


def test_a_failed_run_keeps_the_question_in_view(qtbot, care, tmp_path, monkeypatch):
    without_weights(care, tmp_path, monkeypatch)
    _short_ask_dock(qtbot, care)
    outcome = _ask(qtbot, care, "Is there a pleural effusion?")
    assert outcome.record is None and outcome.error_kind == "weights"
    assert care.ask.message.isVisible() and care.ask.message_level == "error"
    assert _whole_in_view(care.ask.question, care.ask_dock)


def test_a_cancelled_run_keeps_the_question_in_view(qtbot, care):
    _short_ask_dock(qtbot, care)
    panel = care.ask
    top = _question_top(care)
    # Cancel as soon as the first stage reports: the run stops at the next stage boundary.
    care.run_started.connect(lambda handle: handle.signals.partial.connect(
        lambda _p: panel.cancel_button.isEnabled() and panel.cancel_button.click()))
    outcome = _ask(qtbot, care)
    assert outcome.record is not None and outcome.record.status == "cancelled"
    assert panel.status.text().startswith("Cancelled after ")
    assert _whole_in_view(panel.question, care.ask_dock) and _question_top(care) == top


def test_a_run_started_while_a_choice_has_the_focus_hands_it_to_cancel_and_keeps_the_panel_still(qtbot, care):
    """Mode and models are disabled while a run goes: the focus on one of them goes to Cancel, not
    down the tab chain (the scroll area would scroll to whichever widget took it)."""
    _short_ask_dock(qtbot, care)
    panel = care.ask
    bar = panel.scroll_area.verticalScrollBar()
    assert bar.maximum() > 0  # the dock is short enough to scroll
    bar.setValue(0)
    panel.set_question(QUESTION)
    panel.profile.setFocus()
    qtbot.waitUntil(panel.profile.hasFocus, timeout=2_000)
    at_start: list[tuple[bool, int]] = []
    seen: list[int] = []

    def started(handle) -> None:
        at_start.append((panel.cancel_button.hasFocus(), bar.value()))
        handle.signals.partial.connect(lambda _p: seen.append(bar.value()))

    care.run_started.connect(started)
    with qtbot.waitSignal(care.run_finished, timeout=120_000):
        care.start_run(QUESTION, "tiny")  # as Re-ask in the Audit panel does: the focus stays where it was
    assert at_start == [(True, 0)]
    assert seen and set(seen) == {0}
    assert panel.question.hasFocus()  # back to the question when the run ended
