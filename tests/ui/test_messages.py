"""Issue 13, defect 7: messages are never clipped, long stages show they are alive, the box
tool shows a busy cue, overrides read in plain words, and every shortcut is listed."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect, Qt

from tests.ui.care_session import QUESTION, settle, without_weights


def _ask(qtbot, care, question=QUESTION, timeout=120_000):
    care.ask.set_question(question)
    assert care.ask.run_button.isEnabled()
    with qtbot.waitSignal(care.run_finished, timeout=timeout) as sig:
        qtbot.mouseClick(care.ask.run_button, Qt.MouseButton.LeftButton)
    return sig.args[0]


def assert_whole_text_visible(qtbot, panel) -> None:
    """The message label wraps, has the height its text needs at its width, is no wider
    than the panel, and scrolls fully into view (so no part of the text is ever cut)."""
    label = panel.message
    qtbot.waitUntil(lambda: label.isVisible() and label.height() >= label.heightForWidth(label.width()),
                    timeout=5_000)
    assert label.wordWrap()
    viewport = panel.scroll_area.viewport()
    assert label.width() <= viewport.width()
    assert label.minimumSizeHint().width() <= viewport.width()  # nothing forces it wider
    # The laid-out text (as Qt lays it at this width) fits in the label's contents.
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setDefaultFont(label.font())
    doc.setHtml(label.text())
    doc.setTextWidth(label.contentsRect().width())
    assert doc.size().height() <= label.height()
    # Scrolled into view: the whole label lies inside the viewport (or the area scrolls to it).
    if label.height() <= viewport.height():
        qtbot.waitUntil(lambda: viewport.rect().contains(QRect(label.mapTo(viewport, QPoint(0, 0)), label.size())),
                        timeout=5_000)
    else:  # taller than the panel: the area must at least scroll
        qtbot.waitUntil(lambda: panel.scroll_area.verticalScrollBar().maximum() > 0, timeout=5_000)
    flags = label.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse and flags & Qt.TextInteractionFlag.TextSelectableByKeyboard


def _narrow_ask_dock(qtbot, care) -> None:
    """The docks as a radiologist leaves them: the Ask dock short, the Audit dock tall."""
    w = care.window
    w.resizeDocks([care.ask_dock, care.audit_dock], [200, 700], Qt.Orientation.Vertical)
    w.resizeDocks([care.ask_dock], [330], Qt.Orientation.Horizontal)
    qtbot.wait(50)


def test_missing_weights_message_shows_the_whole_install_command(qtbot, care, tmp_path, monkeypatch):
    without_weights(care, tmp_path, monkeypatch)
    _narrow_ask_dock(qtbot, care)
    outcome = _ask(qtbot, care, "Is there a pleural effusion?")
    assert outcome.record is None and outcome.error_kind == "weights"
    text = care.ask.message_text()
    assert "care-viewer models fetch tiny" in text and "care-viewer models import" in text
    assert outcome.error.replace("`", "").split()[-1] in text  # to its last word
    # The commands are in the label exactly as typed (no break points): selecting copies them.
    assert outcome.error.count("`") >= 2
    for cmd in outcome.error.split("`")[1::2]:
        assert f">{cmd}</code>" in care.ask.message.text().replace("&lt;", "<").replace("&gt;", ">")
    assert_whole_text_visible(qtbot, care.ask)


def test_audit_unavailable_message_gives_the_reason_in_full(qtbot, care):
    from app.audit.service import AuditService
    from app.audit.store import AuditStoreError

    reason = ("/home/radiologist/.local/share/care-viewer/audit/a-very-long-folder-name-that-never-wraps/"
              "audit.sqlite3: cannot open the audit database (disk I/O error)")

    def broken():
        raise AuditStoreError(reason)

    _narrow_ask_dock(qtbot, care)
    care.audit_io.service = AuditService(broken)
    care.ask.set_question(QUESTION)
    assert care.start_run(QUESTION, "tiny") is None
    settle(qtbot, care)
    text = care.ask.message_text()
    assert text.startswith("Audit trail unavailable")
    assert "so no run was started" in text and reason in text  # the reason itself, to its end
    assert_whole_text_visible(qtbot, care.ask)


def test_long_stages_show_elapsed_time_and_a_busy_bar(qtbot, tmp_path, monkeypatch):
    from app.pipeline.context import STAGE_SPAN
    from app.pipeline.types import Stage
    from app.ui.ask_panel import QUIET_MS, AskPanel
    from app.ui.run_worker import Progress
    from tests.ui.care_session import isolate_settings

    isolate_settings(monkeypatch, tmp_path)
    panel = AskPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.run_started(QUESTION)
    # "loading the VQA model" comes with no fraction: busy at once.
    panel.on_progress(Progress(Stage.ANSWER, "loading the VQA model", STAGE_SPAN[Stage.ANSWER][0]))
    assert panel.busy
    qtbot.waitUntil(lambda: panel.status.text().startswith("Answer: loading the VQA model \u2014 ")
                    and panel.status.text().endswith(" s"), timeout=3_000)
    # A real fraction: a determinate bar at that fraction.
    panel.on_progress(Progress(Stage.ANSWER, "answering with 3 evidence types", 0.52))
    assert not panel.busy and panel.progress.value() == 520
    # Generation then reports nothing for a while: the bar turns busy, the clocks keep going.
    qtbot.waitUntil(lambda: panel.busy, timeout=QUIET_MS + 3_000)
    first = panel.elapsed.text()
    qtbot.waitUntil(lambda: panel.elapsed.text() != first, timeout=3_000)
    assert panel.elapsed.text().endswith(" s")
    panel.cancel_button.click()  # "Cancelling..." is not overwritten by the stage clock
    qtbot.wait(450)
    assert panel.status.text().startswith("Cancelling")


def test_a_real_run_shows_stage_time_and_ends_with_a_full_bar(qtbot, care):
    seen: list[tuple[bool, str]] = []
    care.run_started.connect(lambda handle: handle.signals.partial.connect(
        lambda _p: seen.append((care.ask.busy, care.ask.status.text()))))
    outcome = _ask(qtbot, care)
    assert outcome.record.status == "completed"
    assert any(busy for busy, _ in seen)  # the model-loading reports came with no fraction
    assert not care.ask.busy and care.ask.progress.value() == 1000
    assert care.ask.status.text().startswith("Answered in ")


def test_box_tool_keeps_the_box_and_shows_a_busy_cue_while_litemedsam_runs(qtbot, care):
    from app.ui.override_tools import SEGMENTING_LAYER
    from tests.ui.care_session import TUMOUR_BOX, screen_point

    view = care.view
    care.act_draw.setChecked(True)
    assert care.draw_tool.active
    during: list[tuple] = []
    # Connected after the controller's slot: runs right after segment_box started the worker.
    care.draw_tool.box_drawn.connect(lambda k, box: during.append((
        SEGMENTING_LAYER in view.overlays, view.cursor().shape(), care.window.status.currentMessage(),
        care.box_worker is not None)))
    a = screen_point(view, TUMOUR_BOX[0], TUMOUR_BOX[1])
    b = screen_point(view, TUMOUR_BOX[2] - 1, TUMOUR_BOX[3] - 1)
    with qtbot.waitSignal(care.box_segmented, timeout=60_000) as sig:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=a)
        qtbot.mouseMove(view, QPoint((a.x() + b.x()) // 2, (a.y() + b.y()) // 2))
        qtbot.mouseMove(view, b)
        qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=b)
    assert during, "the drag made no box"
    shown, cursor, status, working = during[0]
    assert working and shown and cursor == Qt.CursorShape.BusyCursor
    assert status.startswith("Segmenting the box")
    out = sig.args[0]
    assert out.mask is not None
    # Cleared when it returns: the busy box goes, the draw cursor comes back, the result is said.
    assert SEGMENTING_LAYER not in view.overlays
    assert view.cursor().shape() == Qt.CursorShape.CrossCursor and not care.draw_tool.segmenting
    assert "confidence" in care.window.status.currentMessage()


def test_shortcuts_dialog_lists_every_action_with_a_shortcut(qtbot, care):
    from PySide6.QtGui import QAction, QKeySequence, QShortcut

    from app.ui.dialogs import ShortcutsDialog

    w = care.window
    dlg = ShortcutsDialog(w)
    qtbot.addWidget(dlg)
    table = dlg.table
    listed = {(table.item(r, 0).text(), table.item(r, 1).text()) for r in range(table.rowCount())}
    keys_listed = {k for k, _ in listed}
    bound = [(a.text(), s.toString(QKeySequence.SequenceFormat.NativeText))
             for a in w.findChildren(QAction) for s in a.shortcuts()]
    bound += [(sc.objectName(), sc.key().toString(QKeySequence.SequenceFormat.NativeText))
              for sc in w.findChildren(QShortcut)]
    assert len(bound) >= 10  # the window's own actions and the Ask/Audit panel's
    missing = [(t, k) for t, k in bound if k and k not in keys_listed]
    assert not missing, f"shortcuts not in the dialog: {missing}"
    for text, keys in [(a.text(), a.shortcut().toString(QKeySequence.SequenceFormat.NativeText))
                       for a in w.findChildren(QAction) if not a.shortcut().isEmpty()]:
        name = text.replace("&", "").rstrip("\u2026").rstrip(".").strip()
        assert (keys, name) in listed
    # The panels' own actions come with it (not a hand-kept list): Draw box (B), Export (Ctrl+E).
    assert any(k == "B" and "box" in a.lower() for k, a in listed)
    assert any(k == QKeySequence("Ctrl+E").toString(QKeySequence.SequenceFormat.NativeText) for k, _ in listed)
    # A shortcut added later is listed without editing the dialog.
    extra = QAction("Cine play/pause", w)
    extra.setShortcut(QKeySequence("Space"))
    w.addAction(extra)
    again = ShortcutsDialog(w)
    qtbot.addWidget(again)
    assert ("Space", "Cine play/pause") in again.rows


def _clipped_labels(panel) -> list[str]:
    """Labels of the audit panel that do not fit: wider than the scroll viewport (the panel
    never scrolls sideways) or shorter than their wrapped text needs."""
    from PySide6.QtWidgets import QLabel

    viewport = panel.scroll.viewport()
    right = viewport.mapToGlobal(QPoint(viewport.width(), 0)).x()
    out = []
    for lab in panel.findChildren(QLabel):
        if not lab.isVisible() or not lab.text():
            continue
        edge = lab.mapToGlobal(QPoint(lab.width(), 0)).x()
        if panel.scroll.isAncestorOf(lab) and edge > right + 1:
            out.append(f"too wide ({edge - right} px): {lab.text()[:80]!r}")
        elif lab.wordWrap() and lab.height() < lab.heightForWidth(lab.width()):
            out.append(f"cut ({lab.height()} < {lab.heightForWidth(lab.width())}): {lab.text()[:80]!r}")
    return out


def test_audit_panel_reads_at_its_default_width_with_overrides_in_plain_words(qtbot, care):
    from tests.ui.care_session import TUMOUR_BOX

    w = care.window
    w.resize(1440, 900)  # the window's default size, docks as the window lays them out
    first = _ask(qtbot, care).record
    panel = care.audit
    if first.masks:
        panel.mask_rows[0].discard.click()
    from tests.ui.test_ask_audit import draw_box

    assert draw_box(qtbot, care, TUMOUR_BOX).mask is not None
    settle(qtbot, care)
    from PySide6.QtWidgets import QLabel as _QLabel

    qtbot.waitUntil(lambda: "you drew a box" in " ".join(
        lab.text() for lab in panel.sec_overrides.findChildren(_QLabel)), timeout=10_000)
    for sec in panel._sections() + tuple(panel.answer_sections):
        sec.set_expanded(True)  # every section open: the widest the panel gets
    qtbot.wait(100)
    assert not _clipped_labels(panel), _clipped_labels(panel)
    from PySide6.QtGui import QTextDocument
    from PySide6.QtWidgets import QLabel

    doc = QTextDocument()
    doc.setHtml("<br>".join(lab.text() for lab in panel.sec_overrides.findChildren(QLabel)))
    shown = doc.toPlainText()
    assert "mask_discard" not in shown and "box_added" not in shown and "masks[0]" not in shown
    if first.masks:
        assert "you discarded mask 1 (" in shown and f"C {first.masks[0].confidence:.2f})" in shown
    assert "\u2192 LiteMedSAM mask C " in shown


def test_status_bar_keeps_the_whole_message_in_its_tooltip(qtbot, main_window):
    msg = "Audit trail unavailable: " + "/very/long/path" * 20 + "/audit.sqlite3: cannot open (disk I/O error)"
    main_window.status.showMessage(msg, 15000)
    assert main_window.status.currentMessage() == msg and main_window.status.toolTip() == msg
    main_window.status.clearMessage()
    assert main_window.status.toolTip() == ""
