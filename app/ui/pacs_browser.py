"""The PACS study browser: search a configured node, see each study's series with thumbnails
as they arrive, and open a study in the viewer.

Every network call runs on a worker (:mod:`app.ui.workers`); the dialog only binds results.
"Open" retrieves the study into the app's PACS cache (``<data dir>/pacs-cache``, where a second
retrieve resumes: instances already there are kept) with progress and cancel, then emits
``open_requested(folder)``; ``install_pacs(window)`` wires that to ``window.open_paths``.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QGridLayout, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from app.pacs.models import QueryFilter, SeriesMatch, StudyMatch
from app.pacs.nodes import PacsNode, load_nodes

from .pacs_thumbnails import THUMB, is_document, thumb_pixmap, thumbnail_array
from .workers import Worker

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

MODALITIES = ("", "CT", "MR", "CR", "DX", "US", "PT", "NM", "MG", "XA", "SEG", "SR", "OT")
COLUMNS = ("Patient", "Patient ID", "Date", "Accession", "Modalities", "Description", "Series", "Images")


def cache_dir() -> Path:
    """Where retrieved studies are kept (``<study uid>/<series uid>/<sop uid>.dcm``)."""
    from app.audit.paths import data_dir

    return data_dir() / "pacs-cache"


def _date_or_none(text: str, what: str) -> dt.date | None:
    text = text.strip()
    if not text:
        return None
    digits = text.replace("-", "")
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])) if len(digits) == 8 else _bad(text, what)
    except ValueError:
        return _bad(text, what)


def _bad(text: str, what: str) -> dt.date:
    raise ValueError(f"{what} {text!r} is not a date (YYYYMMDD or YYYY-MM-DD)")


def _fmt_date(d: str) -> str:
    return f"{d[:4]}-{d[4:6]}-{d[6:8]}" if len(d) == 8 and d.isdigit() else d


def _fmt_name(pn: str) -> str:
    from app.audit.present import fmt_person_name

    return fmt_person_name(pn)


class PacsBrowser(QDialog):
    open_requested = Signal(str)  # a folder holding the retrieved study
    searched = Signal(int)  # number of studies found (tests and status)
    series_listed = Signal(int)
    thumbnail_arrived = Signal(str)  # series uid
    retrieve_done = Signal(object)  # RetrieveResult
    failed = Signal(str)  # one line

    def __init__(self, parent: QWidget | None = None, *, nodes: list[PacsNode] | None = None,
                 cache: Path | None = None, client_factory: Callable[[PacsNode], Any] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.setObjectName("PacsBrowser")
        self.resize(1100, 680)
        self._cache = cache
        self._client_factory = client_factory
        self.studies: list[StudyMatch] = []
        self.series: list[SeriesMatch] = []
        self._workers: dict[str, Worker] = {}

        # --- node and search form ----------------------------------------------------
        self.node_box = QComboBox(self)
        # Results belong to the node they came from: another node starts a fresh search.
        self.node_box.currentIndexChanged.connect(lambda _i: self._clear_results())
        self.nodes_button = QPushButton("Nodes…", self)
        self.nodes_button.clicked.connect(self._edit_nodes)
        self.patient_id = QLineEdit(self)
        self.patient_name = QLineEdit(self)
        self.patient_name.setPlaceholderText("e.g. DOE^J*")
        self.accession = QLineEdit(self)
        self.date_from = QLineEdit(self)
        self.date_from.setPlaceholderText("YYYYMMDD")
        self.date_to = QLineEdit(self)
        self.date_to.setPlaceholderText("YYYYMMDD")
        self.modality = QComboBox(self)
        self.modality.setEditable(True)
        self.modality.addItems(list(MODALITIES))
        self.search_button = QPushButton("Search", self)
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(self.search)
        for edit in (self.patient_id, self.patient_name, self.accession, self.date_from, self.date_to):
            edit.returnPressed.connect(self.search)

        form = QGridLayout()
        form.addWidget(QLabel("Node"), 0, 0)
        node_row = QHBoxLayout()
        node_row.addWidget(self.node_box, 1)
        node_row.addWidget(self.nodes_button)
        form.addLayout(node_row, 0, 1, 1, 3)
        form.addWidget(QLabel("Patient ID"), 1, 0)
        form.addWidget(self.patient_id, 1, 1)
        form.addWidget(QLabel("Patient name"), 1, 2)
        form.addWidget(self.patient_name, 1, 3)
        form.addWidget(QLabel("Accession"), 2, 0)
        form.addWidget(self.accession, 2, 1)
        form.addWidget(QLabel("Modality"), 2, 2)
        form.addWidget(self.modality, 2, 3)
        form.addWidget(QLabel("Study date from"), 3, 0)
        form.addWidget(self.date_from, 3, 1)
        form.addWidget(QLabel("to"), 3, 2)
        form.addWidget(self.date_to, 3, 3)
        form.addWidget(self.search_button, 4, 3)

        # --- results: studies (table) and the selected study's series (thumbnails) -------
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_study_selected)
        self.table.cellDoubleClicked.connect(lambda *_: self.open_selected())
        self.series_list = QListWidget(self)
        self.series_list.setIconSize(QSize(THUMB, THUMB))
        self.series_list.setSpacing(2)
        self.series_list.setWordWrap(True)
        self.series_list.setMinimumWidth(260)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.series_list)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)

        # --- open / progress / cancel -------------------------------------------------
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_retrieve)
        self.open_button = QPushButton("Open study", self)
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_selected)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.progress, 3)
        bottom.addStretch(1)  # keeps the buttons their size while the progress bar is hidden
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.open_button)
        bottom.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        layout.addLayout(bottom)
        self.set_nodes(nodes)

    # ================================================================ nodes ==
    def set_nodes(self, nodes: list[PacsNode] | None = None) -> None:
        """The node chooser's entries (None: read pacs.toml)."""
        if nodes is None:
            try:
                nodes = load_nodes()
            except ValueError as exc:
                nodes = []
                self._say(str(exc), error=True)
        current = self.node_box.currentText()
        self.node_box.clear()
        self._nodes = list(nodes)
        for n in self._nodes:
            self.node_box.addItem(n.label)
        index = next((i for i, n in enumerate(self._nodes) if n.label == current), 0)
        self.node_box.setCurrentIndex(index)
        self.search_button.setEnabled(bool(self._nodes))
        if not self._nodes:
            self._say("No PACS node configured: add one with Nodes…")

    @property
    def node(self) -> PacsNode | None:
        i = self.node_box.currentIndex()
        return self._nodes[i] if 0 <= i < len(self._nodes) else None

    def _client(self, node: PacsNode):  # runs on a worker
        if self._client_factory is not None:
            return self._client_factory(node)
        from app.pacs.client import client_for

        return client_for(node)

    def _edit_nodes(self) -> None:
        from .pacs_nodes_dialog import PacsNodesDialog

        dlg = PacsNodesDialog(self)
        dlg.exec()
        self.set_nodes(None)

    # =============================================================== search ==
    def query(self) -> QueryFilter:
        """The form as a query; ValueError (one line) for a date that is not one."""
        lo = _date_or_none(self.date_from.text(), "Study date from")
        hi = _date_or_none(self.date_to.text(), "Study date to")
        if lo and hi and lo > hi:
            raise ValueError("the study date range ends before it starts")
        return QueryFilter(patient_id=self.patient_id.text().strip(), patient_name=self.patient_name.text().strip(),
                           accession=self.accession.text().strip(), date_from=lo, date_to=hi,
                           modality=self.modality.currentText().strip().upper())

    def search(self) -> None:
        node = self.node
        if node is None:
            return
        try:
            query = self.query()
        except ValueError as exc:
            self._say(str(exc), error=True)
            return
        self._say(f"Searching {node.label}…")
        self.search_button.setEnabled(False)
        self._start("search", lambda ctx: self._client(node).find_studies(query), self._on_studies,
                    done=lambda: self.search_button.setEnabled(bool(self._nodes)))

    def _clear_results(self) -> None:
        if not hasattr(self, "table"):
            return  # still being built
        self._stop("series")
        self.studies, self.series = [], []
        self.table.setRowCount(0)
        self.series_list.clear()
        self.open_button.setEnabled(False)

    def _on_studies(self, studies: list[StudyMatch]) -> None:
        self.studies = list(studies)
        self.table.setRowCount(0)
        self.series_list.clear()
        self.series = []
        for s in self.studies:
            row = self.table.rowCount()
            self.table.insertRow(row)
            cells = (_fmt_name(s.patient_name), s.patient_id, _fmt_date(s.study_date), s.accession,
                     ", ".join(s.modalities), s.description,
                     "" if s.n_series is None else str(s.n_series), "" if s.n_instances is None else str(s.n_instances))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(s.study_uid)
                self.table.setItem(row, col, item)
        n = len(self.studies)
        self._say(f"{n} stud{'y' if n == 1 else 'ies'} found on {self.node.label if self.node else 'the node'}")
        if n:
            self.table.selectRow(0)
        self.searched.emit(n)

    # =============================================================== series ==
    def selected_study(self) -> StudyMatch | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.studies[rows[0].row()] if rows and rows[0].row() < len(self.studies) else None

    def _on_study_selected(self) -> None:
        study, node = self.selected_study(), self.node
        self.open_button.setEnabled(study is not None and "retrieve" not in self._workers)
        self.series_list.clear()
        self.series = []
        if study is None or node is None:
            return
        self._stop("series")

        def task(ctx):
            client = self._client(node)
            series = client.find_series(study.study_uid)
            ctx.partial(("series", study.study_uid, series))
            for s in series:  # thumbnails one by one: each shows as soon as it is here
                if ctx.cancelled():
                    break
                if is_document(s.modality):  # a placeholder, no pixels: nothing to fetch (a PDF can be large)
                    ctx.partial(("thumb", s.series_uid, None))
                    continue
                try:
                    ctx.partial(("thumb", s.series_uid, thumbnail_array(client.first_instance(study.study_uid, s.series_uid))))
                except Exception as exc:  # noqa: BLE001 - one missing thumbnail must not stop the others
                    log.info("thumbnail of series %s: %s", s.series_uid, exc)
                    ctx.partial(("thumb", s.series_uid, None))
            return len(series)

        self._start("series", task, lambda _n: None, partial=self._on_series_partial)

    def _on_series_partial(self, payload) -> None:
        kind = payload[0]
        study = self.selected_study()
        if kind == "series":
            _, study_uid, series = payload
            if study is None or study.study_uid != study_uid:
                return
            self.series = list(series)
            for s in self.series:
                n = "" if s.n_instances is None else f" · {s.n_instances} image{'s' if s.n_instances != 1 else ''}"
                number = "" if s.number is None else f"#{s.number} "
                item = QListWidgetItem(f"{number}{s.description or '(no description)'}\n{s.modality}{n}")
                item.setData(Qt.ItemDataRole.UserRole, s.series_uid)
                item.setToolTip(s.series_uid)
                self.series_list.addItem(item)
            self.series_listed.emit(len(self.series))
        elif kind == "thumb":
            _, series_uid, img = payload
            modality = next((s.modality for s in self.series if s.series_uid == series_uid), "")
            for i in range(self.series_list.count()):
                item = self.series_list.item(i)
                if item.data(Qt.ItemDataRole.UserRole) == series_uid:
                    item.setIcon(QIcon(thumb_pixmap(img, modality)))
                    item.setData(Qt.ItemDataRole.UserRole + 1, img is not None)
                    self.thumbnail_arrived.emit(series_uid)

    # ============================================================== retrieve ==
    def open_selected(self) -> None:
        study, node = self.selected_study(), self.node
        if study is None or node is None or "retrieve" in self._workers:
            return
        out = self._cache or cache_dir()
        self.progress.setRange(0, max(study.n_instances or 0, 0))
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.open_button.setEnabled(False)
        self._say(f"Retrieving study of {_fmt_name(study.patient_name) or study.patient_id or study.study_uid}…")

        def task(ctx):
            return self._client(node).retrieve(
                study.study_uid, out_dir=out, cancel=ctx.cancelled,
                progress=lambda p: ctx.progress(p.done, p.total, p.current_sop_uid))

        folder = out / study.study_uid
        self._start("retrieve", task, lambda result: self._on_retrieved(result, folder),
                    progress=self._on_progress, cancelled=lambda: self._on_retrieve_cancelled(folder),
                    done=self._retrieve_finished)

    def cancel_retrieve(self) -> None:
        worker = self._workers.get("retrieve")
        if worker is not None:
            worker.cancel()
            self._say("Cancelling the retrieve…")

    def _on_progress(self, done: int, total: int, _msg: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"{done} / {total} instances")

    def _on_retrieved(self, result, folder: Path) -> None:
        self.retrieve_done.emit(result)
        kept = result.kept
        line = (f"Retrieved {kept} of {result.total} instances ({len(result.written)} new, "
                f"{result.already_present} already in the cache)")
        if result.error:
            line += f". {result.error}"
        self._say(line, error=bool(result.failed))
        if kept:
            self.open_requested.emit(str(folder))

    def _on_retrieve_cancelled(self, folder: Path) -> None:
        kept = sum(1 for _ in folder.rglob("*.dcm")) if folder.is_dir() else 0
        self._say(f"Retrieve cancelled: {kept} instance(s) kept in the cache; Open again resumes")

    def _retrieve_finished(self) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setEnabled(False)
        self.open_button.setEnabled(self.selected_study() is not None)

    # =============================================================== workers ==
    def _start(self, key: str, task, on_finished, *, partial=None, progress=None, cancelled=None, done=None) -> None:
        worker = Worker(task, name={"search": "PACS query", "series": "PACS series query",
                                    "retrieve": "PACS retrieve"}.get(key, key))
        self._workers[key] = worker
        s = worker.signals

        def end(w: Worker, handler, *args) -> None:
            # The worker is forgotten before its handler runs: the handler may start the next.
            if self._workers.get(key) is w:
                del self._workers[key]
                if done is not None:
                    done()
                if handler is not None:
                    handler(*args)

        s.finished.connect(lambda r, w=worker: end(w, on_finished, r))
        s.errored.connect(lambda msg, w=worker: end(w, self._on_error, msg))
        s.cancelled.connect(lambda w=worker: end(w, cancelled))
        if partial is not None:
            s.partial.connect(lambda p, w=worker: self._if_current(key, w, partial, p))
        if progress is not None:
            s.progress.connect(lambda d, t, m, w=worker: self._if_current(key, w, progress, d, t, m))
        worker.start()

    def _if_current(self, key: str, worker: Worker, fn, *args) -> None:
        if self._workers.get(key) is worker:
            fn(*args)

    def _stop(self, key: str) -> None:
        worker = self._workers.pop(key, None)
        if worker is not None:
            worker.cancel()

    def _on_error(self, message: str) -> None:
        self._say(message, error=True)
        self.failed.emit(message)

    def _say(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff8080;" if error else "")

    def closeEvent(self, event) -> None:  # noqa: N802
        for key in ("series", "search"):
            self._stop(key)  # a retrieve goes on: its study opens when it is done
        super().closeEvent(event)


def install_pacs(window: "MainWindow") -> "PacsActions":
    return PacsActions(window)


class PacsActions:
    """File > Open from PACS… and File > PACS Nodes… in the main window."""

    def __init__(self, window: "MainWindow") -> None:
        from PySide6.QtGui import QAction

        self.window = window
        self.browser: PacsBrowser | None = None
        self.act_browse = QAction("Open from &PACS…", window)
        self.act_browse.setShortcut("Ctrl+Shift+P")
        self.act_browse.triggered.connect(self.show_browser)
        self.act_nodes = QAction("PACS &Nodes…", window)
        self.act_nodes.triggered.connect(self.edit_nodes)
        file_menu = window.menuBar().actions()[0].menu()
        quit_action = getattr(window, "act_quit", None)
        for act in (self.act_browse, self.act_nodes):
            file_menu.insertAction(quit_action, act) if quit_action else file_menu.addAction(act)
        file_menu.insertSeparator(quit_action) if quit_action else None
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:  # a retrieve still running must not hold the exit up
            app.aboutToQuit.connect(self.shutdown)

    def shutdown(self) -> None:
        if self.browser is not None:
            for key in list(self.browser._workers):
                self.browser._stop(key)

    def show_browser(self) -> PacsBrowser:
        if self.browser is None:
            self.browser = PacsBrowser(self.window)
            self.browser.open_requested.connect(lambda folder: self.window.open_paths([folder]))
        else:
            self.browser.set_nodes(None)
        self.browser.show()
        self.browser.raise_()
        return self.browser

    def edit_nodes(self) -> None:
        from .pacs_nodes_dialog import PacsNodesDialog

        PacsNodesDialog(self.window).exec()
        if self.browser is not None:
            self.browser.set_nodes(None)


__all__ = ["PacsActions", "PacsBrowser", "cache_dir", "install_pacs", "thumbnail_array"]
