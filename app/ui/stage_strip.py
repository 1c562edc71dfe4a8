"""The Ask panel's five stage chips (entities -> masks -> evidence -> answer -> review)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from app.pipeline.types import Stage
from app.pipeline.vocab import RunStatus

from .run_worker import STAGES

STAGE_LABELS = {
    Stage.ENTITIES: "Entities",
    Stage.MASKS: "Masks",
    Stage.EVIDENCE: "Evidence",
    Stage.ANSWER: "Answer",
    Stage.REVIEW: "Review",
}


class StageStrip(QWidget):
    """Five chips: pending (dim), running (blue), done (green), stopped (amber/red)."""

    COLORS = {"pending": ("#2a3038", "#7d8793"), "active": ("#1f5f85", "#ffffff"),
              "done": ("#24543a", "#cfeedd"), "stopped": ("#6b4a12", "#ffe2a8"), "failed": ("#6e2326", "#ffd5d5")}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        self.chips: dict[Stage, QLabel] = {}
        for i, st in enumerate(STAGES):
            chip = QLabel(STAGE_LABELS[st])
            chip.setAlignment(Qt.AlignmentFlag.AlignCenter)
            chip.setMinimumWidth(58)
            self.chips[st] = chip
            lay.addWidget(chip, 1)
            if i < len(STAGES) - 1:
                arrow = QLabel("\u203a")
                arrow.setStyleSheet("color:#5a626d;")
                lay.addWidget(arrow)
        self.reset()

    def state(self, stage: Stage) -> str:
        return self.chips[stage].property("state")

    def _set(self, stage: Stage, state: str) -> None:
        bg, fg = self.COLORS[state]
        chip = self.chips[stage]
        chip.setProperty("state", state)
        chip.setStyleSheet(f"background:{bg}; color:{fg}; border-radius:3px; padding:2px 4px;")

    def reset(self) -> None:
        for st in STAGES:
            self._set(st, "pending")

    def activate(self, stage: Stage) -> None:
        idx = STAGES.index(stage)
        for i, st in enumerate(STAGES):
            self._set(st, "done" if i < idx else "active" if i == idx else "pending")

    def finish(self, status: str, timed: set[Stage]) -> None:
        """After the run: done where the stage ran; where it stopped, amber (cancel) or red."""
        stopped = False
        for st in STAGES:
            if st in timed:
                self._set(st, "done")
            elif not stopped and status in (RunStatus.CANCELLED, RunStatus.FAILED):
                self._set(st, "stopped" if status == RunStatus.CANCELLED else "failed")
                stopped = True
            else:
                self._set(st, "pending")
