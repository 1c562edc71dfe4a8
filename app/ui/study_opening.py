"""Opening studies in the main window: the file and folder dialogs, drag and drop, and the
background load that shows the first image while the rest of the series streams in (part of
:class:`~app.ui.main_window.MainWindow`)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from PySide6.QtCore import QSettings
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog

from app.study.reformat import native_plane
from app.study.volume import LoadResult

from .dialogs import ErrorsDialog
from .loading import load_worker, sample_path
from .workers import Worker

if TYPE_CHECKING:
    from .main_window import MainWindow

log = logging.getLogger(__name__)

FILE_FILTER = (
    "Medical images (*.dcm *.DCM *.ima *.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd *.png *.jpg *.jpeg *.tif *.tiff *.bmp);;"
    "All files (*)"
)


class StudyOpeningMixin:
    """Dialogs, drag and drop and background loading of :class:`~app.ui.main_window.MainWindow`."""

    def open_paths(self: "MainWindow", paths: Sequence[str | Path]) -> None:
        """Open files and/or folders in the background (replaces the current study)."""
        paths = [str(p) for p in paths if str(p)]
        if not paths:
            return
        self.cancel_loading()
        self._partial_volume = None
        self._partial_front = 0
        label = Path(paths[0]).name + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        self.status.begin_task(f"Opening {label}…")
        self.status.showMessage(f"Opening {label}…")
        if self._current is None:
            self.view.set_message(f"Opening {label}…")
        worker = load_worker(paths)
        self._worker = worker
        s = worker.signals
        s.progress.connect(lambda d, t, m, w=worker: self._on_progress(w, d, t, m))
        s.partial.connect(lambda payload, w=worker: self._on_partial(w, payload))
        s.finished.connect(lambda result, w=worker: self._on_loaded(w, result))
        s.errored.connect(lambda msg, w=worker: self._on_load_error(w, msg))
        s.cancelled.connect(lambda w=worker: self._on_cancelled(w))
        worker.start()  # only now: a fast task must not emit before we listen

    def open_sample(self: "MainWindow") -> None:
        try:
            path = sample_path()
        except Exception as exc:  # noqa: BLE001 - missing sample must not take the app down
            self._show_failure(f"The sample study is not available: {exc}")
            return
        self.open_paths([path])

    def cancel_loading(self: "MainWindow") -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
            self.status.end_task()
            if self._current is not None and (self._current.provisional or self._current is self._partial_volume):
                # Nothing may outlive the load as if it were the series (a run, a measurement): not
                # the provisional image, nor a volume cut off mid-fill (its later slices are blank).
                # Back to the study the Series list still shows, if any.
                self._partial_volume = None
                row = self.series_browser.list.currentRow()
                self.show_volume(self._volumes[row] if 0 <= row < len(self._volumes) else None)

    # ================================================================ loading ==
    def _on_progress(self: "MainWindow", worker: Worker, done: int, total: int, msg: str) -> None:
        if worker is not self._worker:
            return
        self.status.task_progress(done, total, msg)
        if self._partial_volume is not None and not self._partial_timer.isActive():
            self._partial_timer.start()

    def _on_partial(self: "MainWindow", worker: Worker, payload) -> None:
        if worker is not self._worker:
            return
        volume, done, total = payload
        if volume.provisional:
            self.status.showMessage("Provisional image: one file, shown while the series is read and sorted", 8000)
        self._partial_front = max(0, int(done) - 1)
        self._replace_study(worker)
        if self._partial_volume is not volume:
            self._partial_volume = volume
            self.show_volume(volume)
            self.view.set_slice(min(self._partial_front, volume.num_slices // 2))
        if not self._partial_timer.isActive():
            self._partial_timer.start()

    def _refresh_partial(self: "MainWindow") -> None:
        v = self._partial_volume
        if v is None or v is not self._current:
            return
        follow = None
        if not self.view.user_navigated:
            # Follow the fill front up to the middle slice, where a finished series opens.
            follow = min(self._partial_front, v.num_slices // 2)
        self.view.refresh_data(follow_slice=follow)

    def _on_loaded(self: "MainWindow", worker: Worker, result: LoadResult) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.status.end_task()
        self._partial_timer.stop()
        if not result.volumes and self._replacing is not worker and self._current is not None:
            # Nothing readable: the study on screen stays, and the message says why.
            self._partial_volume = None
            self._show_errors(result)
            return
        self._replace_study(worker)
        self._volumes = list(result.volumes)
        # DICOM SEGs placed on these volumes and non-image documents (SR/PDF) of the study.
        self.segmentations = list(result.segmentations)
        self.documents = list(result.documents)
        current_index = 0
        if self._partial_volume is not None and self._partial_volume in self._volumes:
            current_index = self._volumes.index(self._partial_volume)
        self._partial_volume = None
        self.series_browser.set_volumes(self._volumes, current_index)
        if self._volumes:
            shown = self._volumes[current_index]
            if shown is self._current:
                self.view.loading_finished()
                if not self.view.user_navigated:
                    self.view.set_slice(shown.num_slices // 2, plane=native_plane(shown))
            else:
                self.show_volume(shown)
            n = len(self._volumes)
            message = f"Opened {n} series" + (f", {len(result.errors)} item(s) skipped" if result.errors else "")
            notes = assumption_notes(self._volumes)
            for note in notes:
                log.warning("%s", note)
            self.status.showMessage(message + notes_suffix(notes), 15000 if notes else 8000)
            self.series_loaded.emit(self.volumes)
            self.view.setFocus()
        else:
            self.show_volume(None)
        if result.errors:
            self._show_errors(result)

    def _replace_study(self: "MainWindow", worker: Worker) -> None:
        """Once per load, before its first volume is shown: the old study's panels clear."""
        if self._replacing is not worker:
            self._replacing = worker
            self.study_replaced.emit()

    def _on_load_error(self: "MainWindow", worker: Worker, message: str) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.status.end_task()
        self._show_failure(message)

    def _on_cancelled(self: "MainWindow", worker: Worker) -> None:
        self.status.showMessage("Loading cancelled", 5000)
        if self._current is None:
            self.view.set_message("")

    def _show_errors(self: "MainWindow", result: LoadResult) -> None:
        lines = [str(e) for e in result.errors]
        if not result.volumes:
            text = "Could not open " + ("\n".join(lines) if len(lines) <= 6 else "\n".join(lines[:6]) + f"\n… and {len(lines) - 6} more")
            self._show_failure(text)
        else:
            suffix = notes_suffix(assumption_notes(list(result.volumes)))
            self.status.showMessage(f"{len(lines)} item(s) could not be opened (see list)" + suffix, 15000)
        if len(lines) > 1 or result.volumes:
            if self._error_dialog is not None:
                self._error_dialog.close()
            self._error_dialog = ErrorsDialog(result.errors, self)
            self._error_dialog.destroyed.connect(lambda *_: setattr(self, "_error_dialog", None))
            self._error_dialog.show()

    def _show_failure(self: "MainWindow", text: str) -> None:
        """A load that produced nothing: the reason goes into the viewport and status bar."""
        log.warning("%s", text)
        kept = " (the open study stays)" if self._current is not None else ""
        self.status.showMessage(text.splitlines()[0] + kept, 15000)
        if self._current is None:
            self.view.set_message(text, error=True)
        self.load_failed.emit(text)

    # ================================================================ dialogs ==
    def _settings(self: "MainWindow") -> QSettings:
        return QSettings("CARE", "CARE Viewer")

    def _open_file_dialog(self: "MainWindow") -> None:
        start = str(self._settings().value("last_dir", str(Path.home())))
        files, _ = QFileDialog.getOpenFileNames(self, "Open image files", start, FILE_FILTER)
        if files:
            self._settings().setValue("last_dir", str(Path(files[0]).parent))
            self.open_paths(files)

    def _open_folder_dialog(self: "MainWindow") -> None:
        start = str(self._settings().value("last_dir", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM folder", start)
        if folder:
            self._settings().setValue("last_dir", folder)
            self.open_paths([folder])

    # ========================================================== drag and drop ==
    def dragEnterEvent(self: "MainWindow", event: QDragEnterEvent) -> None:  # noqa: N802
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self: "MainWindow", event) -> None:  # noqa: N802
        if _local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self: "MainWindow", event: QDropEvent) -> None:  # noqa: N802
        paths = _local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)


def assumption_notes(volumes: list) -> list[str]:
    """One line per volume warning that says a header value was unusable and what was
    assumed instead (invalid spacing/origin/orientation/window), named by its series."""
    keys = ("assumed", "ignored")
    return [f"{v.display_name}: {w}" for v in volumes for w in v.warnings if any(k in w for k in keys)]


def notes_suffix(notes: list[str]) -> str:
    """What the loader assumed, for the status bar, as `info` shows it ('' when nothing)."""
    if not notes:
        return ""
    return f"; {notes[0]}" + (f" (+{len(notes) - 1} more)" if len(notes) > 1 else "")


def _local_paths(mime) -> list[str]:
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]

