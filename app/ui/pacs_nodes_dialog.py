"""PACS node settings: add, edit and remove the nodes of ``pacs.toml`` and check one with an
echo (C-ECHO / a DICOMweb ping) on a worker.

Passwords never go into the file: a node names the environment variable holding it, or the
password typed here is put in the OS keyring (:func:`app.pacs.nodes.store_password`).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from app.pacs.nodes import PacsAuth, PacsNode, PacsProtocol, PacsTls, load_nodes, nodes_path, save_nodes, store_password

from .workers import Worker


class PacsNodesDialog(QDialog):
    saved = Signal(object)  # list[PacsNode], after a successful save
    echoed = Signal(object)  # EchoResult

    def __init__(self, parent: QWidget | None = None, *, path: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PACS nodes")
        self.setObjectName("PacsNodesDialog")
        self.resize(760, 520)
        self._path = path
        self._echo_worker: Worker | None = None
        self.message = QLabel("", self)
        self.message.setWordWrap(True)
        try:
            self.nodes: list[PacsNode] = load_nodes(path)
        except ValueError as exc:
            self.nodes = []
            self._say(f"{exc} (saving replaces the file)", error=True)

        self.list = QListWidget(self)
        # A node's label carries its whole URL: elided in the row (whole in the tooltip), never
        # a horizontal scroll bar hiding the end of every name.
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentRowChanged.connect(self._show_node)
        add, remove = QPushButton("Add", self), QPushButton("Remove", self)
        add.clicked.connect(self.add_node)
        remove.clicked.connect(self.remove_node)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        left.addLayout(row)

        self.name = QLineEdit(self)
        self.protocol = QComboBox(self)
        self.protocol.addItem("DICOMweb (QIDO-RS / WADO-RS / STOW-RS)", PacsProtocol.DICOMWEB.value)
        self.protocol.addItem("DIMSE (C-ECHO / C-FIND / C-GET / C-MOVE / C-STORE)", PacsProtocol.DIMSE.value)
        self.protocol.currentIndexChanged.connect(self._protocol_changed)
        self.url = QLineEdit(self)
        self.url.setPlaceholderText("http://pacs.hospital:8042/dicom-web")
        self.ae_title = QLineEdit(self)
        self.ae_title.setPlaceholderText("ORTHANC")
        self.host = QLineEdit(self)
        self.port = QSpinBox(self)
        self.port.setRange(0, 65535)
        self.port.setValue(4242)
        self.calling_ae = QLineEdit("CAREVIEWER", self)
        self.move_port = QSpinBox(self)
        self.move_port.setRange(0, 65535)
        self.move_port.setSpecialValueText("C-GET (no C-MOVE)")
        self.tls = QCheckBox("Use TLS", self)
        self.ca_file = QLineEdit(self)
        self.ca_file.setPlaceholderText("CA bundle (empty: the system's)")
        self.cert_file, self.key_file = QLineEdit(self), QLineEdit(self)
        self.username = QLineEdit(self)
        self.password_env = QLineEdit(self)
        self.password_env.setPlaceholderText("e.g. PACS_PASSWORD")
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("stored in the OS keyring on Save, never in the file")

        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Protocol", self.protocol)
        form.addRow("DICOMweb URL", self.url)
        form.addRow("Called AE title", self.ae_title)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Calling AE title", self.calling_ae)
        form.addRow("C-MOVE port", self.move_port)
        security = QGroupBox("Security", self)
        sec = QFormLayout(security)
        sec.addRow(self.tls)
        sec.addRow("CA file", self.ca_file)
        sec.addRow("Client certificate", self.cert_file)
        sec.addRow("Client key", self.key_file)
        sec.addRow("Username", self.username)
        sec.addRow("Password variable", self.password_env)
        sec.addRow("Password", self.password)
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.clicked.connect(self.apply_form)
        self.echo_button = QPushButton("Echo", self)
        self.echo_button.clicked.connect(self.echo)
        self.echo_result = QLabel("", self)
        self.echo_result.setWordWrap(True)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(security)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.echo_button)
        buttons.addStretch(1)
        right.addLayout(buttons)
        right.addWidget(self.echo_result)

        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 2)
        save, close = QPushButton("Save", self), QPushButton("Close", self)
        save.clicked.connect(self.save)
        close.clicked.connect(self.reject)
        self.where = QLabel(f"Saved to {path or nodes_path()}", self)
        bottom = QHBoxLayout()
        bottom.addWidget(self.where, 1)
        bottom.addWidget(save)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.message)
        layout.addLayout(bottom)
        self._fill_list(0)
        self._protocol_changed()

    # ================================================================= list ==
    def _fill_list(self, row: int) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for n in self.nodes:
            self.list.addItem(n.label)
            self.list.item(self.list.count() - 1).setToolTip(n.label)
        self.list.blockSignals(False)
        if self.nodes:
            self.list.setCurrentRow(max(0, min(row, len(self.nodes) - 1)))
            self._show_node(self.list.currentRow())
        else:
            self._show_node(-1)

    def _show_node(self, row: int) -> None:
        n = self.nodes[row] if 0 <= row < len(self.nodes) else None
        self.name.setText(n.name if n else "")
        self.protocol.setCurrentIndex(1 if n and n.protocol is PacsProtocol.DIMSE else 0)
        self.url.setText((n.url or "") if n else "")
        self.ae_title.setText((n.ae_title or "") if n else "")
        self.host.setText((n.host or "") if n else "")
        self.port.setValue(int(n.port or 4242) if n else 4242)
        self.calling_ae.setText(n.calling_ae if n else "CAREVIEWER")
        self.move_port.setValue(int(n.move_port or 0) if n else 0)
        tls = n.tls if n else PacsTls()
        self.tls.setChecked(tls.enabled)
        self.ca_file.setText(tls.ca_file)
        self.cert_file.setText(tls.cert_file)
        self.key_file.setText(tls.key_file)
        auth = n.auth if n else None
        self.username.setText(auth.username if auth else "")
        self.password_env.setText(auth.password_env if auth else "")
        self.password.clear()
        self.echo_result.clear()
        self._protocol_changed()

    def _protocol_changed(self) -> None:
        web = self.protocol.currentData() == PacsProtocol.DICOMWEB.value
        self.url.setEnabled(web)
        for w in (self.ae_title, self.host, self.port, self.move_port):
            w.setEnabled(not web)

    # ================================================================= form ==
    def form_node(self) -> PacsNode:
        """The node the form describes; ValueError (one line) when it is not a valid one."""
        protocol = PacsProtocol(self.protocol.currentData())
        name = self.name.text().strip()
        if not name:
            raise ValueError("a node needs a name")
        auth = None
        if self.username.text().strip():
            auth = PacsAuth(username=self.username.text().strip(), password_env=self.password_env.text().strip())
        tls = PacsTls(enabled=self.tls.isChecked(), ca_file=self.ca_file.text().strip(),
                      cert_file=self.cert_file.text().strip(), key_file=self.key_file.text().strip())
        if protocol is PacsProtocol.DICOMWEB:
            return PacsNode(name=name, protocol=protocol, url=self.url.text().strip(),
                            calling_ae=self.calling_ae.text().strip() or "CAREVIEWER", tls=tls, auth=auth)
        return PacsNode(name=name, protocol=protocol, ae_title=self.ae_title.text().strip(), host=self.host.text().strip(),
                        port=self.port.value() or None, calling_ae=self.calling_ae.text().strip() or "CAREVIEWER",
                        tls=tls, auth=auth, move_port=self.move_port.value() or None)

    def apply_form(self) -> bool:
        """Write the form into the selected node (or a new one); False with the reason shown."""
        try:
            node = self.form_node()
        except ValueError as exc:
            self._say(str(exc), error=True)
            return False
        row = self.list.currentRow()
        others = [n.name for i, n in enumerate(self.nodes) if i != row]
        if node.name in others:
            self._say(f"another node is already named {node.name!r}", error=True)
            return False
        if self.password.text():
            try:
                store_password(node, self.password.text())
            except ValueError as exc:
                self._say(str(exc), error=True)
                return False
            self.password.clear()
        if 0 <= row < len(self.nodes):
            self.nodes[row] = node
        else:
            self.nodes.append(node)
            row = len(self.nodes) - 1
        self._fill_list(row)
        self._say(f"{node.label}: applied (Save writes the file)")
        return True

    def add_node(self) -> None:
        base, i = "New node", 1
        names = {n.name for n in self.nodes}
        name = base
        while name in names:
            i += 1
            name = f"{base} {i}"
        self.nodes.append(PacsNode(name=name, protocol=PacsProtocol.DICOMWEB, url="http://localhost:8042/dicom-web"))
        self._fill_list(len(self.nodes) - 1)

    def remove_node(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.nodes):
            gone = self.nodes.pop(row)
            self._fill_list(row)
            self._say(f"{gone.label} removed (Save writes the file)")

    def save(self) -> bool:
        if self.nodes and not self.apply_form():
            return False
        try:
            where = save_nodes(self.nodes, self._path)
        except OSError as exc:
            self._say(f"cannot write the PACS nodes: {exc}", error=True)
            return False
        self._say(f"Saved {len(self.nodes)} node(s) to {where}")
        self.saved.emit(list(self.nodes))
        return True

    # ================================================================= echo ==
    def echo(self) -> None:
        try:
            node = self.form_node()
        except ValueError as exc:
            self.echo_result.setText(str(exc))
            return
        # A typed password counts once applied (it goes to the keyring then, never to a variable).
        self.echo_button.setEnabled(False)
        self.echo_result.setText(f"Echo {node.label}…")

        def task(_ctx):
            from app.pacs.client import client_for

            return client_for(node).echo()

        worker = Worker(task, name="PACS echo")
        self._echo_worker = worker
        worker.signals.finished.connect(self._on_echo)
        worker.signals.errored.connect(self._on_echo_error)
        worker.start()

    def _on_echo_error(self, message: str) -> None:
        self.echo_button.setEnabled(True)
        self.echo_result.setText(f"\u2717 {message}")

    def _on_echo(self, result) -> None:
        self.echo_button.setEnabled(True)
        mark = "\u2713" if result.ok else "\u2717"
        self.echo_result.setText(f"{mark} {result.message}")
        self.echoed.emit(result)

    def _say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ff8080;" if error else "")


__all__ = ["PacsNodesDialog"]
