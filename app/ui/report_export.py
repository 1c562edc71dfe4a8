"""File > Export Evidence Report: the dialog (where, page size, de-identification) and the
controller part that loads the run through the audit queue and writes the PDF on a worker."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QWidget,
)

from .audit_worker import AuditFailure
from .workers import Worker, failure_message

if TYPE_CHECKING:
    from app.audit.store import LoadedRun

    from .ask_audit import AskAuditController


class ReportExportMixin:
    """Export of a stored run as a PDF (part of :class:`~app.ui.ask_audit.AskAuditController`)."""

    report_worker: Worker | None

    def export_dialog(self: "AskAuditController", run_id: str | None = None) -> None:
        rid = run_id or self.current_run_id
        if rid is None:
            self.window.status.showMessage("No run to report: ask a question or open one from the History", 8000)
            return
        dlg = ExportReportDialog(self.window, default_report_path(rid))
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.export_report(rid, dlg.path(), dlg.page_size(), dlg.deidentify())

    def export_report(self: "AskAuditController", run_id: str, path: str | Path, page_size: str = "A4",
                      deidentify: bool = False) -> None:
        """Load the run (audit queue), then build the PDF on a worker; ``report_written`` or
        ``report_failed`` tells the outcome."""
        out = Path(path)

        def loaded(run: "LoadedRun") -> None:
            from app.audit.report import build_report

            def task(_ctx) -> str:
                try:
                    build_report(run.record, out, overrides=run.overrides, page_size=page_size,
                                 deidentify=deidentify, patient=run.patient)
                except Exception as exc:  # the worker logs the traceback, cause included
                    raise ReportNotWritten(report_failure_sentence(out, exc)) from exc
                return str(out)

            worker = Worker(task, name="report")
            self.report_worker = worker
            worker.signals.finished.connect(self._on_report)
            worker.signals.errored.connect(self._on_report_error)
            worker.start()

        def failed(f: AuditFailure) -> None:
            if f.unavailable:
                self.window.status.showMessage(f"Audit trail unavailable: {f.message}", 15000)
            else:  # worded as a failure of the report task, as when it loaded the run itself
                self._on_report_failed(failure_message("report", f.message, f.error_type))

        self.window.status.showMessage(f"Writing the evidence report to {out.name}\u2026")
        self.audit_io.submit(lambda s: s.load_run(run_id), loaded, failed, name="report")

    def _on_report(self: "AskAuditController", path: str) -> None:
        self.report_worker = None
        QSettings("CARE", "CARE Viewer").setValue("report/last_dir", str(Path(path).parent))
        self.window.status.showMessage(f"Evidence report written: {path}", 15000)
        self.report_written.emit(path)

    def _on_report_error(self: "AskAuditController", msg: str) -> None:
        # The worker's line is "report failed: <sentence>"; the sentence alone says it all.
        self._on_report_failed(msg.split(": ", 1)[1] if msg.startswith("report failed: ") else msg)

    def _on_report_failed(self: "AskAuditController", msg: str) -> None:
        self.report_worker = None
        self.window.status.showMessage(msg, 15000)
        self.ask.show_message(msg, "error", title="Report not written")
        self.report_failed.emit(msg)


class ReportNotWritten(Exception):
    """A failed export, worded as the one sentence the window shows."""


def report_failure_sentence(out: Path, exc: BaseException) -> str:
    from app.audit.report import failure_reason

    reason = failure_reason(exc).rstrip(".")
    return f"The evidence report was not written to {out.name}: {reason[:1].lower() + reason[1:]}."


def default_report_path(run_id: str) -> str:
    last = QSettings("CARE", "CARE Viewer").value("report/last_dir", str(Path.home()))
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    return str(Path(str(last)) / f"care-report-{stamp}-{run_id[:8]}.pdf")


class ExportReportDialog(QDialog):
    """Where to write the PDF, page size, de-identification."""

    def __init__(self, parent: QWidget | None, default_path: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export evidence report")
        form = QFormLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit(default_path)
        self.path_edit.setMinimumWidth(380)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form.addRow("Save as", row)
        self.size_combo = QComboBox()
        self.size_combo.addItems(["A4", "Letter"])
        form.addRow("Page size", self.size_combo)
        self.deid = QCheckBox("De-identify (leave out patient name, ID, birth date)")
        form.addRow("", self.deid)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save evidence report", self.path_edit.text(), "PDF (*.pdf)")
        if path:
            self.path_edit.setText(path if path.lower().endswith(".pdf") else path + ".pdf")

    def _accept(self) -> None:
        p = Path(self.path_edit.text().strip()).expanduser()
        if not p.name:
            return
        if not p.parent.is_dir():
            QMessageBox.warning(self, "Export evidence report", f"{p.parent}: no such folder")
            return
        if p.exists() and QMessageBox.question(self, "Export evidence report", f"{p.name} exists. Replace it?") \
                != QMessageBox.StandardButton.Yes:
            return
        self.accept()

    def path(self) -> str:
        p = self.path_edit.text().strip()
        return p if p.lower().endswith(".pdf") else p + ".pdf"

    def page_size(self) -> str:
        return self.size_combo.currentText()

    def deidentify(self) -> bool:
        return self.deid.isChecked()
