"""The question panel: what the radiologist types, which models answer, and how far it got.

Free-text question with a persisted history of recent questions, mode (CARE-Flow; CARE-Coord
once a coordinator exists), profile (from the model manifest, with its install state), Run
and Cancel, per-stage progress (entities -> masks -> evidence -> answer -> review) with the
elapsed time, and every failure as a readable message (never a traceback).

The panel only emits requests (``run_requested``/``cancel_requested``); the controller
(:mod:`app.ui.ask_audit`) owns the worker and feeds progress back.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QElapsedTimer, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.audit.present import breakable
from app.pipeline.context import STAGE_SPAN
from app.pipeline.types import Stage
from app.pipeline.vocab import RunStatus

from .installed_code import coordinator_available
from .profile_choices import ProfileChoice, profile_choices  # noqa: F401 (re-exported)
from .profile_choices import profile_tip as _profile_tip
from .run_worker import Progress, RunOutcome, friendly_errors
from .stage_strip import STAGE_LABELS, StageStrip
from .theme import icon

MAX_RECENT = 15
QUIET_MS = 1500  # no progress report for this long: the stage is busy (bar indeterminate)
RECENT_KEY = "ask/recent_questions"
PROFILE_KEY = "ask/profile"
COORD_TIP = "CARE-Coord needs the coordinator, which is not part of this build yet; CARE-Flow runs every evidence type and votes."


def settings() -> QSettings:
    """Where the panel keeps its history (tests point this at a temporary file)."""
    return QSettings("CARE", "CARE Viewer")


class AskPanel(QWidget):
    run_requested = Signal(str, str, str)  # question, profile, mode
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AskPanel")
        self._running = False
        self._has_target = False
        self._clock = QElapsedTimer()
        self._stage_clock = QElapsedTimer()  # since the current stage began
        self._report_clock = QElapsedTimer()  # since the last progress report
        self._stage_status = ""
        self._tick = QTimer(self)
        self._tick.setInterval(200)
        self._tick.timeout.connect(self._update_elapsed)
        self.last_progress: Progress | None = None

        # Everything scrolls inside the dock: a long message (the install command, the audit
        # trail's reason) grows the panel instead of being cut at the dock's height.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(self.scroll_area)
        self.scroll_area.setWidget(body)
        # A new message is brought into view once the layout has settled: the scroll range grows
        # only after the wrapped label gets its height, so reveal again when the range changes.
        self._reveal_message = False
        self.scroll_area.verticalScrollBar().rangeChanged.connect(lambda *_: self._reveal())
        outer.addWidget(self.scroll_area)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.setSpacing(6)

        self.question = QComboBox(self)
        self.question.setEditable(True)
        self.question.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.question.setMaxVisibleItems(MAX_RECENT)
        self.question.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.question.setToolTip("Your question about the displayed slice (recent questions in the list)")
        le = self.question.lineEdit()
        le.setPlaceholderText("Ask about the displayed slice, e.g. Is there a mass in the right lung?")
        le.setClearButtonEnabled(True)
        le.returnPressed.connect(self._on_run_clicked)
        le.textChanged.connect(lambda _t: self._update_enabled())
        lay.addWidget(self.question)

        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(4)
        self.mode = QComboBox(self)
        self.mode.addItem("CARE-Flow", "flow")
        self.mode.addItem("CARE-Coord", "coord")
        self.mode.setItemData(0, "All three evidence types (zoom-in crop, mask, global) answer; majority vote.",
                              Qt.ItemDataRole.ToolTipRole)
        self.profile = QComboBox(self)
        self.profile.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # A long profile label must not force the panel wider than its dock (the popup still
        # shows it whole); the same for the mode names.
        for combo in (self.mode, self.profile):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        self.profile.currentIndexChanged.connect(self._on_profile_changed)
        grid.addWidget(QLabel("Mode"), 0, 0)
        grid.addWidget(self.mode, 0, 1)
        grid.addWidget(QLabel("Models"), 0, 2)
        grid.addWidget(self.profile, 0, 3)
        # Scope: the slice on screen, or the whole series (evidence slices chosen across the volume).
        self.scope = QComboBox(self)
        self.scope.addItem("this slice", "slice")
        self.scope.addItem("whole study", "study")
        self.scope.setItemData(0, "Answer about the displayed slice only.", Qt.ItemDataRole.ToolTipRole)
        # Which box counts is said exactly: the run takes the boxes drawn with the plain box tool (it
        # propagates the first itself); a lesion made with the box tool's 3-D option is a separate
        # measurement on the view and is not sent to the run.
        self.scope.setItemData(1, "Localise the entity across the series (the first box drawn with the box tool "
                               "for this question, propagated in 3-D; else the models' own localisation), answer "
                               "on a few evidence slices and aggregate their answers; the audit shows which "
                               "slices. A lesion from the box tool's 3-D option is not sent to the run.",
                               Qt.ItemDataRole.ToolTipRole)
        self.scope.setToolTip("What the answer is about: this slice, or the whole study")
        grid.addWidget(QLabel("Scope"), 1, 0)
        grid.addWidget(self.scope, 1, 1)
        grid.setColumnStretch(3, 1)
        lay.addLayout(grid)
        # What the chosen profile's weights are, always visible: "care-paper" is not the paper's experts.
        self.weights_note = QLabel("")
        self.weights_note.setObjectName("ProfileWeights")
        self.weights_note.setWordWrap(True)
        self.weights_note.setStyleSheet("color:#d9b46a;")
        lay.addWidget(self.weights_note)

        row = QHBoxLayout()
        self.target = QLabel("No study open")
        self.target.setStyleSheet("color:#9aa4af;")
        self.target.setWordWrap(True)
        row.addWidget(self.target, 1)
        self.run_button = QPushButton(icon("mdi6.play"), "Ask")
        self.run_button.setToolTip("Run CARE on the displayed acquisition-plane slice (Enter)")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self._on_run_clicked)
        self.cancel_button = QPushButton(icon("mdi6.stop"), "Cancel")
        self.cancel_button.setToolTip("Stop at the next stage boundary (the partial run is kept in the audit trail)")
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        # How the user's view differs from what the models read (flip/rotate/invert).
        self.view_note = QLabel("")
        self.view_note.setObjectName("ViewNote")
        self.view_note.setWordWrap(True)
        self.view_note.setStyleSheet("color:#e8c468;")
        self.view_note.hide()
        lay.addWidget(self.view_note)

        self.stages = StageStrip(self)
        lay.addWidget(self.stages)
        prow = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(6)
        self.elapsed = QLabel("")
        self.elapsed.setStyleSheet("color:#9aa4af;")
        self.elapsed.setMinimumWidth(64)
        self.elapsed.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.elapsed)
        lay.addLayout(prow)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet("color:#c3cad2;")
        lay.addWidget(self.status)

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                             | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.message.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.setFrameShape(QFrame.Shape.StyledPanel)
        self.message.hide()
        self.message_level = ""
        lay.addWidget(self.message)
        lay.addStretch(1)

        self._load_recent()
        self.reload_profiles()
        self._refresh_mode()
        self._update_enabled()

    # ----- setup ---------------------------------------------------------------------
    def _load_recent(self) -> None:
        recent = settings().value(RECENT_KEY, []) or []
        if isinstance(recent, str):
            recent = [recent]
        self.question.clear()
        self.question.addItems([str(q) for q in recent][:MAX_RECENT])
        self.question.setCurrentIndex(-1)
        self.question.setEditText("")

    def remember_question(self, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        s = settings()
        recent = [str(q) for q in (s.value(RECENT_KEY, []) or []) if str(q) != text]
        if isinstance(s.value(RECENT_KEY, []), str):
            recent = []
        recent = [text] + recent
        s.setValue(RECENT_KEY, recent[:MAX_RECENT])
        self.question.blockSignals(True)
        idx = self.question.findText(text)
        if idx >= 0:
            self.question.removeItem(idx)
        self.question.insertItem(0, text)
        while self.question.count() > MAX_RECENT:
            self.question.removeItem(self.question.count() - 1)
        self.question.setCurrentIndex(0)
        self.question.blockSignals(False)

    def recent_questions(self) -> list[str]:
        return [self.question.itemText(i) for i in range(self.question.count())]

    def reload_profiles(self) -> None:
        """Re-read the manifest and the models folder (after a models fetch/import)."""
        try:
            choices, chosen = profile_choices()
        except Exception as exc:  # noqa: BLE001 - a broken manifest must not break the viewer
            self.profile.clear()
            self.weights_note.setText("")
            self.show_message(f"The model manifest cannot be read: {exc}", "error")
            return
        saved = str(settings().value(PROFILE_KEY, "") or "")
        names = [c.name for c in choices]
        if saved in names and next(c for c in choices if c.name == saved).installed:
            chosen = saved
        self.profile.blockSignals(True)
        self.profile.clear()
        for c in choices:
            state = "" if c.installed else "  (unavailable)" if c.unavailable else "  (not installed)"
            label = c.name + state + ("  \u2022 remote" if c.remote else "")
            self.profile.addItem(icon("mdi6.check-circle-outline" if c.installed else "mdi6.download-outline"), label, c.name)
            tip = _profile_tip(c)
            self.profile.setItemData(self.profile.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.choices = {c.name: c for c in choices}
        if chosen in names:
            self.profile.setCurrentIndex(names.index(chosen))
        self.profile.blockSignals(False)
        self._on_profile_changed()

    def _refresh_mode(self) -> None:
        item = self.mode.model().item(1)
        on = coordinator_available()
        item.setEnabled(on)
        self.mode.setItemData(1, "Coordinator plans, calls and reviews the evidence." if on else COORD_TIP,
                              Qt.ItemDataRole.ToolTipRole)
        if not on:
            self.mode.setCurrentIndex(0)
            self.mode.setToolTip(COORD_TIP)

    def _on_profile_changed(self, *_: object) -> None:
        name = self.selected_profile()
        c = getattr(self, "choices", {}).get(name)
        self.weights_note.setText(f"Weights: {c.disclosure}" if c is not None and c.disclosure else "")
        self.weights_note.setToolTip(_profile_tip(c) if c is not None else "")
        if c is not None:
            self.profile.setToolTip(_profile_tip(c))
            settings().setValue(PROFILE_KEY, name)

    # ----- state ---------------------------------------------------------------------
    def selected_profile(self) -> str:
        return str(self.profile.currentData() or "")

    def set_profile(self, name: str) -> None:
        idx = self.profile.findData(name)
        if idx >= 0:
            self.profile.setCurrentIndex(idx)

    def selected_mode(self) -> str:
        return str(self.mode.currentData() or "flow")

    def selected_scope(self) -> str:
        """"slice" or "study" (app.pipeline.vocab.Scope values)."""
        return str(self.scope.currentData() or "slice")

    def question_text(self) -> str:
        return " ".join(self.question.currentText().split())

    def set_question(self, text: str) -> None:
        self.question.setEditText(text)

    @property
    def running(self) -> bool:
        return self._running

    def set_target(self, text: str, available: bool) -> None:
        """What the next run reads (``Slice 34/48 · axial · W 1500 L -600``), or why it cannot run."""
        self.target.setText(text)
        self._has_target = available
        self._update_enabled()

    def set_view_note(self, text: str) -> None:
        """One line under the target, e.g. that the models see the slice unflipped; "" hides it."""
        self.view_note.setText(text)
        self.view_note.setVisible(bool(text))

    def _update_enabled(self) -> None:
        can = self._has_target and not self._running and bool(self.question_text()) and self.profile.count() > 0
        self.run_button.setEnabled(can)
        self.cancel_button.setEnabled(self._running)
        self.question.setEnabled(not self._running)
        self.profile.setEnabled(not self._running)
        self.mode.setEnabled(not self._running)

    def _on_run_clicked(self) -> None:
        if not self.run_button.isEnabled():
            return
        self.run_requested.emit(self.question_text(), self.selected_profile(), self.selected_mode())

    def _on_cancel_clicked(self) -> None:
        if self._running:
            self.cancel_button.setEnabled(False)
            self.status.setText("Cancelling at the next stage boundary\u2026")
            self.cancel_requested.emit()

    # ----- run feedback --------------------------------------------------------------
    def run_started(self, question: str) -> None:
        self._running = True
        self.remember_question(question)
        self.hide_message()
        self.stages.reset()
        self._set_fraction(0.0)
        self.status.setText("Starting\u2026")
        self._stage_status = ""
        self._stage_clock.invalidate()
        self._report_clock.start()
        self._clock.start()
        self._tick.start()
        self._update_elapsed()
        self._update_enabled()

    @property
    def busy(self) -> bool:
        """Whether the bar is indeterminate (a stage is working with no fraction to report)."""
        return self.progress.maximum() == 0

    def _set_fraction(self, fraction: float | None) -> None:
        """A fraction of the whole run, or None: busy (indeterminate) bar."""
        if fraction is None:
            self.progress.setRange(0, 0)
            return
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(round(fraction * 1000)))

    def on_progress(self, p: Progress) -> None:
        if self.last_progress is None or self.last_progress.stage != p.stage or not self._stage_clock.isValid():
            self._stage_clock.start()
        self.last_progress = p
        self._report_clock.start()
        self.stages.activate(p.stage)
        # A report at the very start of its stage's span carries no fraction (the pipeline
        # reports "loading the VQA model" with none): show a busy bar, not a frozen one.
        lo = STAGE_SPAN.get(p.stage, (0.0, 1.0))[0]
        self._set_fraction(None if p.fraction <= lo + 1e-9 and p.fraction < 1.0 else p.fraction)
        self._stage_status = f"{STAGE_LABELS.get(p.stage, p.stage.value)}: {p.message}"
        self._update_elapsed()

    def _update_elapsed(self) -> None:
        if not self._clock.isValid():
            return
        self.elapsed.setText(f"{self._clock.elapsed() / 1000:.1f} s")
        if not self._running:
            return
        # Model loading and generation report nothing for seconds: after a quiet spell the
        # bar turns busy, so a long stage never looks stuck.
        if self._report_clock.isValid() and self._report_clock.elapsed() >= QUIET_MS and not self.busy:
            self._set_fraction(None)
        if not self.cancel_button.isEnabled():
            return  # keep "Cancelling..." visible
        if self._stage_status and self._stage_clock.isValid():
            self.status.setText(f"{self._stage_status} \u2014 {self._stage_clock.elapsed() / 1000:.0f} s")

    def run_finished(self, outcome: RunOutcome) -> None:
        self._running = False
        self._tick.stop()
        self._update_elapsed()
        self._update_enabled()
        rec = outcome.record
        self._set_fraction(0.0)
        if rec is None:
            self.stages.finish("failed", set())
            self.status.setText("Not run")
            self.show_message(outcome.error, "error", title=_ERROR_TITLES.get(outcome.error_kind, "Cannot run"))
            return
        timed = {t.stage for t in rec.timings}
        self.stages.finish(rec.status, timed)
        secs = self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0
        parts: list[tuple[str, str]] = []
        if rec.status == RunStatus.COMPLETED:
            self._set_fraction(1.0)
            self.status.setText(f"Answered in {secs:.1f} s \u2014 see the Audit panel")
        elif rec.status == RunStatus.CANCELLED:
            self.status.setText(f"Cancelled after {secs:.1f} s (kept in the history as cancelled)")
        else:
            self.status.setText(f"Failed after {secs:.1f} s")
        errors = friendly_errors(rec)
        cpu = [w for w in rec.warnings if "on cpu" in w.lower()]
        if errors:
            parts.append(("error", "<br>".join(html.escape(e) for e in errors)))
        if outcome.audit_warning:
            parts.append(("error", html.escape(outcome.audit_warning)))
        if cpu:
            parts.append(("warning", "No GPU: " + html.escape(cpu[0].split(": ", 1)[-1])))
        if parts:
            level = "error" if any(lv == "error" for lv, _ in parts) else "warning"
            self.show_message("<br>".join(t for _, t in parts), level, rich=True,
                              title="Run failed" if rec.status == RunStatus.FAILED else "")
        else:
            self.hide_message()

    def clear_run_state(self) -> None:
        """Another study opened: the last run's stages, timer, "Answered in ..." and its
        warnings are not about it (the Audit panel is emptied at the same time)."""
        if self._running:
            return
        self.stages.reset()
        self._set_fraction(0.0)
        self._clock.invalidate()
        self.elapsed.setText("")
        self.status.setText("")
        self.hide_message()

    def show_message(self, text: str, level: str = "info", *, rich: bool = False, title: str = "") -> None:
        colors = {"error": ("#3a1d20", "#ff9a92", "#7a3036"), "warning": ("#3a3019", "#ffd27a", "#6b5320"),
                  "info": ("#1d2a36", "#b9dcf5", "#2d4a63")}
        bg, fg, border = colors.get(level, colors["info"])
        body = text
        if not rich:
            # Commands in backticks (the weights-missing message) become copyable code, kept
            # exactly as typed; long tokens in the prose (paths, run ids) get break points so
            # the label wraps them instead of widening past the dock (message_text() strips them).
            pieces = text.split("`")
            body = "".join(f"<code style='background:#11151a;color:#e8edf2'>{html.escape(p)}</code>" if i % 2
                           else html.escape(breakable(p, 32)) for i, p in enumerate(pieces)).replace("\n", "<br>")
        head = f"<b>{html.escape(title)}</b><br>" if title else ""
        self.message.setText(head + body)
        self.message.setStyleSheet(f"QLabel{{background:{bg}; color:{fg}; border:1px solid {border}; "
                                   "border-radius:4px; padding:6px;}")
        self.message_level = level
        self.message.show()
        self._reveal_message = True
        QTimer.singleShot(0, self._reveal)

    def _reveal(self) -> None:
        if not (self._reveal_message and self.message.isVisible()):
            return
        self.scroll_area.ensureWidgetVisible(self.message, 0, 0)

    def hide_message(self) -> None:
        self._reveal_message = False
        self.message.hide()
        self.message.setText("")
        self.message_level = ""

    def message_text(self) -> str:
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.message.text())
        return doc.toPlainText().replace("\u200b", "")


_ERROR_TITLES = {
    "weights": "Model weights are not installed",
    "audit": "Audit trail unavailable",
    "input": "Cannot run on this input",
    "internal": "The run could not start",
    "consent": "Not sent",
}
