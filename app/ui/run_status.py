"""The Ask panel's run section: how far the run got and how it ended.

The five stage chips, the progress bar (busy when a stage reports nothing for a while) with the
elapsed time, the status line ("Answer: loading the VQA model - 4 s", "Answered in 3.2 s"), and
the message box: the run's warnings (no GPU), or why it could not run, never a traceback.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QElapsedTimer, Qt, QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from app.audit.present import breakable
from app.pipeline.context import STAGE_SPAN
from app.pipeline.vocab import RunStatus

from .run_worker import Progress, RunOutcome, friendly_errors
from .stage_strip import STAGE_LABELS, StageStrip

QUIET_MS = 1500  # no progress report for this long: the stage is busy (bar indeterminate)
BREAK_EVERY = 32  # break points in longer tokens (paths, run ids) so the message wraps them

ERROR_TITLES = {
    "weights": "Model weights are not installed",
    "audit": "Audit trail unavailable",
    "input": "Cannot run on this input",
    "internal": "The run could not start",
    "consent": "Not sent",
}

_COLORS = {"error": ("#3a1d20", "#ff9a92", "#7a3036"), "warning": ("#3a3019", "#ffd27a", "#6b5320"),
           "info": ("#1d2a36", "#b9dcf5", "#2d4a63")}


def _wrappable(text: str) -> str:
    """Plain text as label HTML that wraps: escaped, with break points in long tokens."""
    return html.escape(breakable(text, BREAK_EVERY))


class RunStatusView(QWidget):
    """Stages, progress and elapsed time, status line and message of the current (or last) run."""

    message_shown = Signal()  # the panel brings a new message into view

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._running = False
        self._cancelling = False
        self._clock = QElapsedTimer()
        self._stage_clock = QElapsedTimer()  # since the current stage began
        self._report_clock = QElapsedTimer()  # since the last progress report
        self._stage_status = ""
        self._tick = QTimer(self)
        self._tick.setInterval(200)
        self._tick.timeout.connect(self._update_elapsed)
        self.last_progress: Progress | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
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

    # ----- the run -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    @property
    def busy(self) -> bool:
        """Whether the bar is indeterminate (a stage is working with no fraction to report)."""
        return self.progress.maximum() == 0

    def started(self) -> None:
        self._running = True
        self._cancelling = False
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

    @property
    def cancel_asked(self) -> bool:
        return self._cancelling

    def cancelling(self) -> None:
        """Cancel was asked: say so until the run stops (the stage clock must not overwrite it)."""
        self._cancelling = True
        self.status.setText("Cancelling at the next stage boundary\u2026")

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
        if self._cancelling:
            return  # keep "Cancelling..." visible
        if self._stage_status and self._stage_clock.isValid():
            self.status.setText(f"{self._stage_status} \u2014 {self._stage_clock.elapsed() / 1000:.0f} s")

    def finished(self, outcome: RunOutcome) -> None:
        self._running = False
        self._tick.stop()
        self._update_elapsed()
        rec = outcome.record
        self._set_fraction(0.0)
        if rec is None:
            self.stages.finish("failed", set())
            self.status.setText("Not run")
            self.show_message(outcome.error, "error", title=ERROR_TITLES.get(outcome.error_kind, "Cannot run"))
            return
        timed = {t.stage for t in rec.timings}
        self.stages.finish(rec.status, timed)
        secs = self._clock.elapsed() / 1000 if self._clock.isValid() else 0.0
        if rec.status == RunStatus.COMPLETED:
            self._set_fraction(1.0)
            self.status.setText(f"Answered in {secs:.1f} s \u2014 see the Audit panel")
        elif rec.status == RunStatus.CANCELLED:
            self.status.setText(f"Cancelled after {secs:.1f} s (kept in the history as cancelled)")
        else:
            self.status.setText(f"Failed after {secs:.1f} s")
        parts: list[tuple[str, str]] = []
        errors = friendly_errors(rec)
        cpu = [w for w in rec.warnings if "on cpu" in w.lower()]
        if errors:
            parts.append(("error", "<br>".join(_wrappable(e) for e in errors)))
        if outcome.audit_warning:
            parts.append(("error", _wrappable(outcome.audit_warning)))
        if cpu:
            parts.append(("warning", "No GPU: " + _wrappable(cpu[0].split(": ", 1)[-1])))
        if parts:
            level = "error" if any(lv == "error" for lv, _ in parts) else "warning"
            self.show_message("<br>".join(t for _, t in parts), level, rich=True,
                              title="Run failed" if rec.status == RunStatus.FAILED else "")
        else:
            self.hide_message()

    def clear(self) -> None:
        """Forget the last run's stages, timer, status line and message."""
        self.stages.reset()
        self._set_fraction(0.0)
        self._clock.invalidate()
        self.elapsed.setText("")
        self.status.setText("")
        self.hide_message()

    # ----- the message ---------------------------------------------------------------
    def show_message(self, text: str, level: str = "info", *, rich: bool = False, title: str = "") -> None:
        bg, fg, border = _COLORS.get(level, _COLORS["info"])
        body = text
        if not rich:
            # Commands in backticks (the weights-missing message) become copyable code, kept
            # exactly as typed; long tokens in the prose (paths, run ids) get break points so
            # the label wraps them instead of widening past the dock (message_text() strips them).
            pieces = text.split("`")
            body = "".join(f"<code style='background:#11151a;color:#e8edf2'>{html.escape(p)}</code>" if i % 2
                           else _wrappable(p) for i, p in enumerate(pieces)).replace("\n", "<br>")
        head = f"<b>{html.escape(title)}</b><br>" if title else ""
        self.message.setText(head + body)
        self.message.setStyleSheet(f"QLabel{{background:{bg}; color:{fg}; border:1px solid {border}; "
                                   "border-radius:4px; padding:6px;}")
        self.message_level = level
        self.message.show()
        self.message_shown.emit()

    def hide_message(self) -> None:
        self.message.hide()
        self.message.setText("")
        self.message_level = ""

    def message_text(self) -> str:
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.message.text())
        return doc.toPlainText().replace("\u200b", "")
