"""Series browser: one row per loaded series with a thumbnail, modality, description and
image count. Selecting a row emits ``series_selected(index)``."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from app.audit.present import fmt_person_name
from app.study.display import apply_window, default_window
from app.study.reformat import native_plane, slice_geometry
from app.study.volume import Volume

from .slice_renderer import numpy_to_qimage

THUMB = 84


def thumbnail(volume: Volume, size: int = THUMB) -> QPixmap:
    """Middle slice of the acquisition plane, windowed, letterboxed to a square."""
    g = slice_geometry(volume, native_plane(volume))
    img = g.extract(volume.array, g.num_slices // 2)
    w = volume.window
    if not volume.is_rgb and (w.width <= 1.0 and w.name in ("auto", "")):
        w = default_window(volume.modality, img)
    img8 = apply_window(np.asarray(img), w, invert=volume.invert_display)
    pm = QPixmap.fromImage(numpy_to_qimage(img8))
    # Physical aspect, then fit the square.
    pw, ph = g.physical_size
    scale = size / max(pw, ph)
    pm = pm.scaled(
        max(1, round(pw * scale)),
        max(1, round(ph * scale)),
        Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    canvas = QPixmap(size, size)
    canvas.fill(Qt.GlobalColor.black)
    p = QPainter(canvas)
    p.drawPixmap((size - pm.width()) // 2, (size - pm.height()) // 2, pm)
    p.end()
    return canvas


def series_text(volume: Volume) -> str:
    n = volume.num_slices
    count = f"{n} image{'s' if n != 1 else ''}" if volume.frames <= 1 else f"{volume.frames} frames"
    if volume.temporal:
        count += " (cine)"  # why coronal/sagittal are off for this series
    x, y, _ = volume.size
    return f"{volume.description or '(no description)'}\n{volume.modality} · {count} · {x}×{y}"


def patient_label(volume: Volume) -> str:
    """"NAME · ID" of the series' patient ("" when the files name none)."""
    p = volume.patient
    # "Family, Given" rather than DICOM's "FAMILY^GIVEN": it wraps at the space in a narrow row.
    return " · ".join(x for x in (fmt_person_name(p.name), p.patient_id) if x)


def _patient_key(volume: Volume) -> tuple[str, str]:
    return volume.patient.name, volume.patient.patient_id


class SeriesBrowser(QWidget):
    series_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SeriesBrowser")
        self.caption = QLabel("No study open", self)
        self.caption.setObjectName("DockCaption")
        self.caption.setWordWrap(True)
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(2)
        self.list.setUniformItemSizes(False)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentRowChanged.connect(self._on_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self.caption)
        layout.addWidget(self.list, 1)
        self._volumes: list[Volume] = []

    @property
    def volumes(self) -> list[Volume]:
        return list(self._volumes)

    def set_volumes(self, volumes: list[Volume], current: int = 0) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        self._volumes = list(volumes)
        # A folder may hold several patients: then every row names its own patient, so no series
        # is ever read as belonging to the patient of another.
        patients = list(dict.fromkeys(_patient_key(v) for v in volumes))
        several = len(patients) > 1
        for v in volumes:
            text = series_text(v)
            if several:
                text = f"Patient {patient_label(v) or '(not named)'}\n{text}"
            item = QListWidgetItem(QIcon(thumbnail(v)), text)
            item.setToolTip(f"{v.display_name}\n{v.series_uid}" if v.series_uid else v.display_name)
            self.list.addItem(item)
        QTimer.singleShot(0, self._fit_rows)
        if volumes:
            self.list.setCurrentRow(max(0, min(current, len(volumes) - 1)))
            who = patient_label(volumes[0])
            n = len(volumes)
            if several:
                self.caption.setText(f"{len(patients)} patients \u00b7 {n} series (the patient is named on each row)")
            else:
                self.caption.setText(f"{who + chr(10) if who else ''}{n} series")
        else:
            self.caption.setText("No study open")
        self.list.blockSignals(False)

    def _fit_rows(self) -> None:
        """Each row as tall as its wrapped text: Qt sizes an icon row from the unwrapped text, so a
        wrapped patient line pushed the series line (modality, images, matrix) out of the row."""
        fm = self.list.fontMetrics()
        # The delegate's text column is narrower than viewport - icon (frame, margins, focus
        # rect, scroll bar): estimate it low, so a row is never too short for its text.
        width = max(40, self.list.viewport().width() - THUMB - 3 * self.list.spacing() - 40)
        for i in range(self.list.count()):
            item = self.list.item(i)
            text = fm.boundingRect(0, 0, width, 10_000, int(Qt.TextFlag.TextWordWrap), item.text())
            item.setSizeHint(QSize(width + THUMB + 16, max(THUMB, text.height() + fm.lineSpacing()) + 8))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        QTimer.singleShot(0, self._fit_rows)  # after the layout has given the list its new width

    def refresh_thumbnail(self, index: int) -> None:
        if 0 <= index < len(self._volumes):
            self.list.item(index).setIcon(QIcon(thumbnail(self._volumes[index])))

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self._volumes):
            self.series_selected.emit(row)
