"""The audit panel's "Export DICOM…" and "Send to PACS…": the shown run as DICOM SEG, TID 1500
SR and Encapsulated PDF (:mod:`app.dicom_export`), written into a folder or stored on a PACS
node (:mod:`app.pacs`), each on a worker; and the CARE SRs of an opened study, read back as
past runs "from PACS" (:mod:`app.ui.audit.pacs_runs`).

``install_run_dicom(window)`` wires it to ``window.care`` (the ask/audit controller).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout,
                               QLabel, QLineEdit, QPushButton, QWidget)

from .workers import Worker

if TYPE_CHECKING:
    from app.pacs.nodes import PacsNode

    from .main_window import MainWindow

log = logging.getLogger(__name__)

# app.dicom_export.ExportKind values (its import pulls pydicom in: not at start-up).
KIND_LABELS = {"seg": "DICOM SEG (accepted masks)", "sr": "Structured report (TID 1500)",
               "pdf": "Evidence report (Encapsulated PDF)"}


class _KindsForm(QDialog):
    """The shared part of both dialogs: which objects to write."""

    def __init__(self, title: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.form = QFormLayout(self)
        self.kind_boxes = {k: QCheckBox(text, self) for k, text in KIND_LABELS.items()}
        for box in self.kind_boxes.values():
            box.setChecked(True)
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)

    def _finish_layout(self) -> None:
        for box in self.kind_boxes.values():
            self.form.addRow("", box)
        self.form.addRow(self.message)
        self.form.addRow(self.buttons)

    def kinds(self) -> frozenset[str]:
        return frozenset(k for k, box in self.kind_boxes.items() if box.isChecked())

    def _accept(self) -> None:
        if not self.kinds():
            self.message.setText("Choose at least one object to write.")
            return
        self.accept()


class DicomExportDialog(_KindsForm):
    def __init__(self, parent: QWidget | None, folder: str) -> None:
        super().__init__("Export the run as DICOM", parent)
        self.folder = QLineEdit(folder, self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.form.addRow("Folder", row)
        self.deidentify = QCheckBox("De-identify (DICOM PS3.15 Basic Profile, consistent UID remapping)", self)
        self.form.addRow("", self.deidentify)
        self._finish_layout()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export DICOM into", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _accept(self) -> None:
        if not self.folder.text().strip():
            self.message.setText("Choose a folder.")
            return
        super()._accept()


class SendToPacsDialog(_KindsForm):
    def __init__(self, parent: QWidget | None, nodes: list["PacsNode"]) -> None:
        super().__init__("Send the run to PACS", parent)
        self.nodes = list(nodes)
        self.node_box = QComboBox(self)
        for n in self.nodes:
            self.node_box.addItem(n.label)
        self.form.addRow("Node", self.node_box)
        self._finish_layout()
        if not self.nodes:
            self.message.setText("No PACS node configured: add one under File > PACS Nodes…")
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)

    def node(self) -> "PacsNode | None":
        i = self.node_box.currentIndex()
        return self.nodes[i] if 0 <= i < len(self.nodes) else None


class RunDicomActions(QObject):
    dicom_written = Signal(object)  # list[Path]
    pacs_stored = Signal(object)  # StoreResult
    failed = Signal(str)  # one line

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.care = window.care
        self.worker: Worker | None = None
        self._asked_seg = False
        header = self.care.audit.header
        header.dicom_export_requested.connect(self.export_dialog)
        header.pacs_send_requested.connect(self.send_dialog)
        from .audit.pacs_runs import PacsRunsReader

        self.past_runs = PacsRunsReader(window, self.care.audit)

    # ================================================================= dialogs ==
    def export_dialog(self) -> None:
        rid = self.care.current_run_id
        if rid is None:
            return
        last = str(QSettings("CARE", "CARE Viewer").value("dicom/last_dir", str(Path.home())))
        dlg = DicomExportDialog(self.window, str(Path(last) / f"care-{rid[:8]}"))
        if dlg.exec() == QDialog.DialogCode.Accepted:
            self.export_dicom(rid, Path(dlg.folder.text().strip()), dlg.kinds(), dlg.deidentify.isChecked())

    def send_dialog(self) -> None:
        rid = self.care.current_run_id
        if rid is None:
            return
        from app.pacs.nodes import load_nodes

        try:
            nodes = load_nodes()
        except ValueError as exc:
            self._failed(str(exc))
            return
        dlg = SendToPacsDialog(self.window, nodes)
        if dlg.exec() == QDialog.DialogCode.Accepted and dlg.node() is not None:
            self.send_to_pacs(rid, dlg.node(), dlg.kinds())

    # ================================================================== workers ==
    def export_dicom(self, run_id: str, folder: Path, kinds: frozenset[str], deidentify: bool = False) -> None:
        """Write the run's objects into ``folder`` on a worker; ``dicom_written`` or ``failed``."""

        def task(_ctx):
            from app.dicom_export import export_run

            return export_run(run_id, folder, kinds, deidentify)

        self._asked_seg = "seg" in {str(getattr(k, "value", k)) for k in kinds}
        self.window.status.showMessage(f"Writing run {run_id[:8]} as DICOM into {folder}\u2026")
        self._start(task, self._on_written, "DICOM export")

    def send_to_pacs(self, run_id: str, node: "PacsNode", kinds: frozenset[str]) -> None:
        """Build the run's objects and store them on ``node`` on a worker; ``pacs_stored`` or ``failed``."""

        def task(_ctx):
            from app.dicom_export import build_run_objects
            from app.pacs.client import client_for

            bundle = build_run_objects(run_id, kinds)
            return node, bundle, client_for(node).store(bundle.datasets)

        self.window.status.showMessage(f"Sending run {run_id[:8]} to {node.label}\u2026")
        self._start(task, self._on_stored, "Send to PACS")

    def _start(self, task, on_finished, name: str) -> None:
        worker = Worker(task, name=name)
        self.worker = worker
        worker.signals.finished.connect(on_finished)
        worker.signals.errored.connect(self._failed)
        worker.signals.done.connect(lambda w=worker: setattr(self, "worker", None) if self.worker is w else None)
        worker.start()

    def _on_written(self, paths: list[Path]) -> None:
        if paths:
            QSettings("CARE", "CARE Viewer").setValue("dicom/last_dir", str(Path(paths[0]).parent.parent))
        folder = Path(paths[0]).parent if paths else ""
        names = [Path(p).name for p in paths]
        line = f"Wrote {len(paths)} DICOM object(s) into {folder}: " + ", ".join(names)
        if self._asked_seg and not any(n.endswith("-seg.dcm") for n in names):
            line += " (no SEG: the run has no accepted mask left to export)"
        self.window.status.showMessage(line, 15000)
        self.dicom_written.emit(list(paths))

    def _on_stored(self, payload) -> None:
        node, bundle, result = payload
        n = len(bundle.datasets)
        kinds = ", ".join(bundle.kind_of(ds).value.upper() for ds in bundle.datasets)
        if result.failed:
            uid, reason = result.failed[0]
            more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
            self._failed(f"{node.label}: stored {len(result.stored)} of {n} object(s) ({kinds}); "
                         f"{uid} not stored: {reason}{more}")
        else:
            notes = f"; {bundle.warnings[0]}" + (f" (+{len(bundle.warnings) - 1} more)" if len(bundle.warnings) > 1 else "") \
                if bundle.warnings else ""
            self.window.status.showMessage(f"Stored {len(result.stored)} of {n} object(s) ({kinds}) on {node.label}{notes}",
                                           15000)
        self.pacs_stored.emit(result)

    def _failed(self, message: str) -> None:
        self.window.status.showMessage(message, 15000)
        self.care.ask.show_message(message, "error", title="DICOM not written")
        self.failed.emit(message)


def install_run_dicom(window: "MainWindow") -> RunDicomActions:
    return RunDicomActions(window)


__all__ = ["DicomExportDialog", "RunDicomActions", "SendToPacsDialog", "install_run_dicom"]
