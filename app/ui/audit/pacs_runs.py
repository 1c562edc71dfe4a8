"""Past runs "from PACS": the CARE structured reports found in an opened study, read back with
:func:`app.dicom_export.read_care_sr` on a worker and listed at the top of the audit panel.

Only what the SR states is shown (question, answer, mode, time, entities with their mask
confidence, models, clinician overrides), with the SR it came from: such a run is not in this
workstation's audit trail, so it has no masks to draw and nothing to edit.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QLabel, QMenu, QVBoxLayout, QWidget

from app.audit.present import breakable, fmt_local_minute, short_hashes

from ..workers import Worker
from .widgets import DIM, esc, label

if TYPE_CHECKING:
    from app.dicom_export import CareSrSummary

log = logging.getLogger(__name__)

SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
# A runaway answer must not push the rest off screen: shortened here, whole in the tooltip.
ANSWER_CHARS = 240


def read_care_srs(paths: list[str]) -> tuple[list["CareSrSummary"], list[str]]:
    """(summaries of the CARE SRs among ``paths``, one line per SR that is not readable as one)."""
    import pydicom

    from app.dicom_export import ExportError, read_care_sr

    found, skipped = [], []
    for p in paths:
        try:
            found.append(read_care_sr(pydicom.dcmread(p, force=True)))
        except ExportError as exc:
            skipped.append(f"{p}: {exc}")  # an SR from another tool: not a CARE run
        except Exception as exc:  # noqa: BLE001 - a damaged file is one line, never a crash
            skipped.append(f"{p}: unreadable ({' '.join(str(exc).split())[:160]})")
    found.sort(key=lambda s: s.created)
    return found, skipped


def summary_html(s: "CareSrSummary") -> str:
    def conf(e) -> str:
        c = "C n/a" if e.confidence is None else f"C = {e.confidence:.2f}"
        return f"{esc(e.name)} ({c}, {'accepted' if e.accepted else 'rejected'})"

    answer = s.answer if len(s.answer) <= ANSWER_CHARS else s.answer[: ANSWER_CHARS - 1] + "\u2026"
    lines = [f"<b>Q:</b> {esc(breakable(s.question))}", f"<b>A:</b> {esc(breakable(answer)) or '(no answer)'}"]
    # Readable time and short hashes on screen; summary_text (tooltip, Copy) has them whole.
    meta = " \u00b7 ".join(x for x in (s.mode, s.created and fmt_local_minute(s.created), f"run {s.run_id[:8]}") if x)
    lines.append(f"<span style='color:{DIM}'>{esc(meta)}</span>")
    if s.entities:
        lines.append("Entities: " + "; ".join(conf(e) for e in s.entities))
    if s.evidence:
        lines.append(f"Evidence: {esc(s.evidence)}")
    if s.decision:
        lines.append(f"Decision: {esc(s.decision)}")
    if s.overrides:
        lines.append("Clinician overrides: " + "; ".join(esc(o) for o in s.overrides))
    if s.models:
        lines.append(f"<span style='color:{DIM}'>Models: {esc(breakable(short_hashes('; '.join(s.models))))}</span>")
    lines.append(f"<span style='color:{DIM}'>From DICOM SR {esc(s.sop_instance_uid)}; not in this workstation's "
                 "audit trail</span>")
    return "<br>".join(lines)


def summary_text(s: "CareSrSummary") -> str:
    """The run's identity in full (time as the SR states it, whole hashes): the row's tooltip and
    what its "Copy" puts on the clipboard, so a shortened value can always be checked."""
    lines = [f"Run {s.run_id}", f"Started {s.created or '(not stated: de-identified)'}"]
    if len(s.answer) > ANSWER_CHARS:
        lines.append(f"Answer: {s.answer}")
    lines += [f"Model {m}" for m in s.models]
    lines.append(f"DICOM SR {s.sop_instance_uid}")
    return "\n".join(lines)


def _row(s: "CareSrSummary") -> QLabel:
    row = label(summary_html(s), rich=True)
    row.setToolTip(summary_text(s))
    row.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

    def menu(pos) -> None:
        m = QMenu(row)
        if row.hasSelectedText():
            m.addAction("Copy selection", lambda: QGuiApplication.clipboard().setText(row.selectedText()))
        m.addAction("Copy run details (full time and hashes)",
                    lambda: QGuiApplication.clipboard().setText(summary_text(s)))
        m.exec(row.mapToGlobal(pos))

    row.customContextMenuRequested.connect(menu)
    return row


class PacsRunsBox(QFrame):
    """The "Past runs from PACS" block (hidden when the study holds no CARE SR)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PacsRuns")
        self.setStyleSheet("#PacsRuns{background:#1d2a22; border-bottom:1px solid #2f5a40;}")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(10, 6, 10, 6)
        self.title = label("", rich=True)
        self.layout_.addWidget(self.title)
        self.rows: list[QWidget] = []
        self.summaries: list[Any] = []
        self.hide()

    def set_summaries(self, summaries: list["CareSrSummary"]) -> None:
        for w in self.rows:
            w.deleteLater()
        self.rows = []
        self.summaries = list(summaries)
        n = len(self.summaries)
        self.title.setText(f"<b>{n} past run{'s' if n != 1 else ''} from PACS</b> (CARE structured report"
                           f"{'s' if n != 1 else ''} in this study)")
        for s in self.summaries:
            row = _row(s)
            self.layout_.addWidget(row)
            self.rows.append(row)
        self.setVisible(bool(n))


class PacsRunsReader(QObject):
    """Reads the opened study's SR documents on a worker and fills the box in the audit panel."""

    read = Signal(object)  # list[CareSrSummary], once the study's SRs were read (not on clearing)

    def __init__(self, window, audit_panel) -> None:
        super().__init__(window)
        self.window = window
        self.box = PacsRunsBox(audit_panel)
        audit_panel.layout().insertWidget(1, self.box)  # under the answer header
        self.worker: Worker | None = None
        self.skipped: list[str] = []
        window.study_replaced.connect(lambda: self._show([]))
        window.series_loaded.connect(lambda _v: self.refresh())

    def refresh(self) -> None:
        docs = [d.path for d in getattr(self.window, "documents", []) if d.sop_class_uid.startswith(SR_PREFIX)]
        if self.worker is not None:
            self.worker.cancel()
        if not docs:
            self._show([])
            self.read.emit([])
            return
        worker = Worker(lambda _ctx: read_care_srs(docs), name="read CARE SR")
        self.worker = worker
        worker.signals.finished.connect(lambda r, w=worker: self._on_read(w, r))
        worker.signals.errored.connect(lambda msg: log.warning("%s", msg))
        worker.start()

    def _on_read(self, worker: Worker, result) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        summaries, self.skipped = result
        for line in self.skipped:
            log.info("not a CARE run: %s", line)
        self._show(summaries)
        self.read.emit(list(summaries))

    def _show(self, summaries) -> None:
        self.box.set_summaries(summaries)


__all__ = ["PacsRunsBox", "PacsRunsReader", "read_care_srs", "summary_html", "summary_text"]
