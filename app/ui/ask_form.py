"""The Ask panel's form: the question with its recent history, and what the run uses (mode,
models profile with what its weights are, scope).

The last questions and the chosen profile are kept in the panel's QSettings (:func:`settings`);
the panel (:mod:`app.ui.ask_panel`) places these widgets and decides what is enabled.
"""
from __future__ import annotations

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from .installed_code import coordinator_available
from .profile_choices import ProfileChoice, profile_choices, profile_tip
from .theme import icon

MAX_RECENT = 15
RECENT_KEY = "ask/recent_questions"
PROFILE_KEY = "ask/profile"
COORD_TIP = "CARE-Coord needs the coordinator, which is not part of this build yet; CARE-Flow runs every evidence type and votes."


def settings() -> QSettings:
    """Where the panel keeps its history (tests point this at a temporary file)."""
    return QSettings("CARE", "CARE Viewer")


def _narrow(combo: QComboBox) -> None:
    """A long item (a recent question, a profile label) must not force the panel wider than its
    dock; the popup still lists it."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)


class QuestionBox(QComboBox):
    """The free-text question; its list holds the recent questions, newest first."""

    submitted = Signal()  # Enter in the field
    edited = Signal()  # the text changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMaxVisibleItems(MAX_RECENT)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        _narrow(self)
        self.setToolTip("Your question about the displayed slice (recent questions in the list)")
        le = self.lineEdit()
        le.setPlaceholderText("Ask about the displayed slice, e.g. Is there a mass in the right lung?")
        le.setClearButtonEnabled(True)
        le.returnPressed.connect(self.submitted)
        le.textChanged.connect(lambda _t: self.edited.emit())
        self.load_recent()

    def load_recent(self) -> None:
        recent = settings().value(RECENT_KEY, []) or []
        if isinstance(recent, str):
            recent = [recent]
        self.clear()
        self.addItems([str(q) for q in recent][:MAX_RECENT])
        self.setCurrentIndex(-1)
        self.setEditText("")

    def remember(self, text: str) -> None:
        text = " ".join(text.split())
        if not text:
            return
        s = settings()
        recent = [str(q) for q in (s.value(RECENT_KEY, []) or []) if str(q) != text]
        if isinstance(s.value(RECENT_KEY, []), str):
            recent = []
        recent = [text] + recent
        s.setValue(RECENT_KEY, recent[:MAX_RECENT])
        self.blockSignals(True)
        idx = self.findText(text)
        if idx >= 0:
            self.removeItem(idx)
        self.insertItem(0, text)
        while self.count() > MAX_RECENT:
            self.removeItem(self.count() - 1)
        self.setCurrentIndex(0)
        self.blockSignals(False)

    def recent(self) -> list[str]:
        return [self.itemText(i) for i in range(self.count())]

    def question_text(self) -> str:
        return " ".join(self.currentText().split())


class RunChoices(QWidget):
    """Mode, models (profile) and scope, and the line saying what the chosen profile's weights are."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.choices: dict[str, ProfileChoice] = {}
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
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
        for combo in (self.mode, self.profile):
            _narrow(combo)
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

    def reload(self) -> str:
        """Re-read the manifest and the models folder; the reason when the manifest cannot be read."""
        try:
            choices, chosen = profile_choices()
        except Exception as exc:  # noqa: BLE001 - a broken manifest must not break the viewer
            self.profile.clear()
            self.weights_note.setText("")
            return f"The model manifest cannot be read: {exc}"
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
            self.profile.setItemData(self.profile.count() - 1, profile_tip(c), Qt.ItemDataRole.ToolTipRole)
        self.choices = {c.name: c for c in choices}
        if chosen in names:
            self.profile.setCurrentIndex(names.index(chosen))
        self.profile.blockSignals(False)
        self._on_profile_changed()
        return ""

    def refresh_mode(self) -> None:
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
        c = self.choices.get(name)
        self.weights_note.setText(f"Weights: {c.disclosure}" if c is not None and c.disclosure else "")
        self.weights_note.setToolTip(profile_tip(c) if c is not None else "")
        if c is not None:
            self.profile.setToolTip(profile_tip(c))
            settings().setValue(PROFILE_KEY, name)

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
