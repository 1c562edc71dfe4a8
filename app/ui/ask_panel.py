"""The question panel: what the radiologist types, which models answer, and how far it got.

Free-text question with a persisted history of recent questions, mode (CARE-Flow; CARE-Coord
once a coordinator exists), profile (from the model manifest, with its install state), scope,
Run and Cancel (the form: :mod:`app.ui.ask_form`), then per-stage progress (entities -> masks
-> evidence -> answer -> review) with the elapsed time and every failure as a readable message,
never a traceback (the run section: :mod:`app.ui.run_status`).

The panel only emits requests (``run_requested``/``cancel_requested``); the controller
(:mod:`app.ui.ask_audit`) owns the worker and feeds progress back.
"""
from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from .ask_form import COORD_TIP, MAX_RECENT, PROFILE_KEY, RECENT_KEY, QuestionBox, RunChoices, settings
from .installed_code import coordinator_available
from .profile_choices import ProfileChoice, profile_choices
from .run_status import ERROR_TITLES, QUIET_MS, RunStatusView
from .run_worker import Progress, RunOutcome
from .theme import icon

__all__ = ["AskPanel", "COORD_TIP", "ERROR_TITLES", "MAX_RECENT", "PROFILE_KEY", "ProfileChoice", "QUIET_MS",
           "RECENT_KEY", "coordinator_available", "profile_choices", "settings"]


class AskPanel(QWidget):
    run_requested = Signal(str, str, str)  # question, profile, mode
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("AskPanel")
        self._has_target = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        # The question, what it is asked about and Ask/Cancel stay above the scroll area: whatever
        # a run adds below (its status, a CPU warning, a long error) and wherever that scrolls,
        # asking again needs no scrolling back.
        self.question = QuestionBox(self)
        self.question.submitted.connect(self._on_run_clicked)
        self.question.edited.connect(self._update_enabled)
        top = QVBoxLayout()
        top.setContentsMargins(8, 8, 8, 2)
        top.setSpacing(6)
        top.addWidget(self.question)
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
        top.addLayout(row)
        # How the user's view differs from what the models read (flip/rotate/invert).
        self.view_note = QLabel("")
        self.view_note.setObjectName("ViewNote")
        self.view_note.setWordWrap(True)
        self.view_note.setStyleSheet("color:#e8c468;")
        self.view_note.hide()
        top.addWidget(self.view_note)
        outer.addLayout(top)
        # A hairline where the scrolling part begins: a row scrolled half out reads as scrolled.
        edge = QFrame(self)
        edge.setFrameShape(QFrame.Shape.HLine)
        edge.setFrameShadow(QFrame.Shadow.Plain)
        edge.setStyleSheet("color:#2f3740;")
        outer.addWidget(edge)

        # The rest scrolls inside the dock: a long message (the install command, the audit
        # trail's reason) grows the panel instead of being cut at the dock's height.
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(self.scroll_area)
        self.scroll_area.setWidget(body)
        # A new message is brought into view once the layout has settled: the scroll range grows
        # only after the wrapped label gets its height, so reveal again when the range changes.
        self._reveal_pending = False
        self.scroll_area.verticalScrollBar().rangeChanged.connect(lambda *_: self._reveal())
        outer.addWidget(self.scroll_area, 1)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(8, 4, 8, 8)
        lay.setSpacing(6)

        self.run_choices = RunChoices(body)
        self.mode, self.profile, self.scope = self.run_choices.mode, self.run_choices.profile, self.run_choices.scope
        self.weights_note = self.run_choices.weights_note
        lay.addWidget(self.run_choices)

        self.run_view = RunStatusView(body)
        v = self.run_view
        self.stages, self.progress, self.elapsed, self.status, self.message = (
            v.stages, v.progress, v.elapsed, v.status, v.message)
        v.message_shown.connect(self._on_message_shown)
        lay.addWidget(v)
        lay.addStretch(1)

        self.reload_profiles()
        self.run_choices.refresh_mode()
        self._update_enabled()

    # ----- the form ------------------------------------------------------------------
    def remember_question(self, text: str) -> None:
        self.question.remember(text)

    def recent_questions(self) -> list[str]:
        return self.question.recent()

    def reload_profiles(self) -> None:
        """Re-read the manifest and the models folder (after a models fetch/import)."""
        error = self.run_choices.reload()
        if error:
            self.show_message(error, "error")

    @property
    def choices(self) -> dict[str, ProfileChoice]:
        return self.run_choices.choices

    def selected_profile(self) -> str:
        return self.run_choices.selected_profile()

    def set_profile(self, name: str) -> None:
        self.run_choices.set_profile(name)

    def selected_mode(self) -> str:
        return self.run_choices.selected_mode()

    def selected_scope(self) -> str:
        """"slice" or "study" (app.pipeline.vocab.Scope values)."""
        return self.run_choices.selected_scope()

    def question_text(self) -> str:
        return self.question.question_text()

    def set_question(self, text: str) -> None:
        self.question.setEditText(text)

    def set_target(self, text: str, available: bool) -> None:
        """What the next run reads (``Slice 34/48 · axial · W 1500 L -600``), or why it cannot run."""
        self.target.setText(text)
        self._has_target = available
        self._update_enabled()

    def set_view_note(self, text: str) -> None:
        """One line under the target, e.g. that the models see the slice unflipped; "" hides it."""
        self.view_note.setText(text)
        self.view_note.setVisible(bool(text))

    @property
    def running(self) -> bool:
        return self.run_view.running

    def _update_enabled(self) -> None:
        running = self.running
        can = self._has_target and not running and bool(self.question_text()) and self.profile.count() > 0
        states = {self.run_button: can, self.cancel_button: running and not self.run_view.cancel_asked,
                  self.question: not running, self.profile: not running, self.mode: not running}
        for w, on in states.items():
            if on:
                w.setEnabled(True)
        # Pass the focus on before disabling the widget holding it: Qt would hand it down the
        # tab chain, and the scroll area scrolls to whichever widget takes it (the panel jumped
        # to Cancel when a run started, and on from there when it ended).
        fw = QApplication.focusWidget()
        if fw is not None and any(not on and (w is fw or w.isAncestorOf(fw)) for w, on in states.items()):
            heir = self.question if not running else self.cancel_button if states[self.cancel_button] else None
            (heir or self.scroll_area).setFocus(Qt.FocusReason.OtherFocusReason)
        for w, on in states.items():
            if not on:
                w.setEnabled(False)

    def _on_run_clicked(self) -> None:
        if not self.run_button.isEnabled():
            return
        self.run_requested.emit(self.question_text(), self.selected_profile(), self.selected_mode())

    def _on_cancel_clicked(self) -> None:
        if self.running:
            self.run_view.cancelling()
            self._update_enabled()
            self.cancel_requested.emit()

    # ----- run feedback --------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether the bar is indeterminate (a stage is working with no fraction to report)."""
        return self.run_view.busy

    @property
    def last_progress(self) -> Progress | None:
        return self.run_view.last_progress

    def run_started(self, question: str) -> None:
        self.remember_question(question)
        self.run_view.started()
        self._update_enabled()

    def on_progress(self, p: Progress) -> None:
        self.run_view.on_progress(p)

    def run_finished(self, outcome: RunOutcome) -> None:
        self.run_view.finished(outcome)
        self._update_enabled()
        if QApplication.focusWidget() is self.scroll_area:  # held it while cancelling: ready to ask again
            self.question.setFocus(Qt.FocusReason.OtherFocusReason)

    def clear_run_state(self) -> None:
        """Another study opened: the last run's stages, timer, "Answered in ..." and its
        warnings are not about it (the Audit panel is emptied at the same time)."""
        if not self.running:
            self.run_view.clear()

    # ----- the message ---------------------------------------------------------------
    @property
    def message_level(self) -> str:
        return self.run_view.message_level

    def show_message(self, text: str, level: str = "info", *, rich: bool = False, title: str = "") -> None:
        self.run_view.show_message(text, level, rich=rich, title=title)

    def hide_message(self) -> None:
        self.run_view.hide_message()

    def message_text(self) -> str:
        return self.run_view.message_text()

    def _on_message_shown(self) -> None:
        self._reveal_pending = True
        QTimer.singleShot(0, self._reveal)

    def _reveal(self) -> None:
        """Scroll the message into view (its top when it is taller than the view) once its height
        has settled; after that the area stays where the radiologist leaves it (a later wrap of
        the target line must not pull it back)."""
        msg = self.message
        if not self._reveal_pending or not msg.isVisible():
            self._reveal_pending = False
            return
        bar = self.scroll_area.verticalScrollBar()
        top = msg.mapTo(self.scroll_area.widget(), QPoint(0, 0)).y()
        room = self.scroll_area.viewport().height()
        want = top if msg.height() >= room else min(top, max(bar.value(), top + msg.height() - room))
        bar.setValue(want)
        if bar.value() == want and msg.height() >= msg.heightForWidth(msg.width()):
            self._reveal_pending = False
