"""Cine playback of the slice view: play/pause, a frame rate from the file (or a stated
default), loop, and a small toolbar control.

One QTimer on the GUI thread steps the view one frame per tick (rendering one slice is a
few milliseconds). The rate comes from the file when it states one (FrameTime,
FrameTimeVector, CineRate or RecommendedDisplayFrameRate, read by
:mod:`app.study.dicom.frame_rate`) and the view shows the acquisition plane, whose slices
are the file's frames; otherwise :data:`DEFAULT_FPS`, and the control says so. A new
study stops playback.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from app.study.reformat import native_plane

DEFAULT_FPS = 10.0
MIN_FPS, MAX_FPS = 0.5, 120.0


class CineController(QObject):
    playing_changed = Signal(bool)
    rate_changed = Signal(float, str)  # fps, where it came from (one line)

    def __init__(self, view, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.loop = True
        self._fps = DEFAULT_FPS
        self._source = ""
        self._user_fps = False  # the user set a rate: keep it until the study changes
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        view.volume_changed.connect(self._on_volume_changed)
        view.plane_changed.connect(lambda *_: self._adopt_file_rate())
        self._adopt_file_rate()

    # ----- rate -----------------------------------------------------------------------
    @property
    def fps(self) -> float:
        return self._fps

    @property
    def rate_source(self) -> str:
        """Where the rate came from, e.g. "from the file: FrameTime 33.333 ms"."""
        return self._source

    def file_rate(self) -> tuple[float, str] | None:
        """The rate the file states for what the view steps through, or None."""
        v = self.view.volume
        if v is None or v.frame_rate is None or self.view.plane != native_plane(v):
            return None
        return float(v.frame_rate), v.frame_rate_source

    def set_fps(self, fps: float) -> None:
        """The user's rate (kept until the study changes)."""
        fps = max(MIN_FPS, min(MAX_FPS, float(fps)))
        self._user_fps = True
        self._set_rate(fps, "set by you")

    def _adopt_file_rate(self) -> None:
        if self._user_fps:
            return
        rate = self.file_rate()
        if rate is not None:
            fps = max(MIN_FPS, min(MAX_FPS, rate[0]))
            self._set_rate(fps, f"from the file: {rate[1]}")
        else:
            self._set_rate(DEFAULT_FPS, f"the viewer's default {DEFAULT_FPS:g} fps (the file states no frame rate)")

    def _set_rate(self, fps: float, source: str) -> None:
        self._fps, self._source = fps, source
        self.timer.setInterval(max(1, round(1000.0 / fps)))
        self.rate_changed.emit(fps, source)

    # ----- playback -------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def can_play(self) -> bool:
        return self.view.volume is not None and self.view.slice_count > 1

    def play(self) -> bool:
        """Start (from the current frame); False when there is nothing to play."""
        if not self.can_play():
            return False
        if not self.playing:
            self.view.user_navigated = True  # progressive loading must not move the slice
            self.timer.start()
            self.playing_changed.emit(True)
        return True

    def pause(self) -> None:
        if self.playing:
            self.timer.stop()
            self.playing_changed.emit(False)

    def toggle(self) -> bool:
        """Play or pause; returns whether it now plays."""
        if self.playing:
            self.pause()
            return False
        return self.play()

    def _tick(self) -> None:
        n = self.view.slice_count
        if n < 2:
            self.pause()
            return
        k = self.view.slice_index + 1
        if k >= n:
            if not self.loop:
                self.pause()
                return
            k = 0
        self.view.set_slice(k)

    def _on_volume_changed(self, _volume) -> None:
        self.pause()
        self._user_fps = False
        self._adopt_file_rate()


class CineControls(QWidget):
    """Toolbar control: frame rate (with where it came from in the tooltip) and loop."""

    def __init__(self, cine: CineController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cine = cine
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 0, 4, 0)
        lay.setSpacing(4)
        self.fps = QDoubleSpinBox(self)
        self.fps.setRange(MIN_FPS, MAX_FPS)
        self.fps.setDecimals(1)
        self.fps.setSuffix(" fps")
        self.fps.setKeyboardTracking(False)
        self.fps.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # arrow keys stay the viewer's
        self.loop = QCheckBox("Loop", self)
        self.loop.setChecked(cine.loop)
        self.loop.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.loop.setToolTip("Start again at the first frame after the last")
        self.source = QLabel("", self)
        self.source.setStyleSheet("color:#9aa4af;")
        lay.addWidget(QLabel("Cine", self))
        lay.addWidget(self.fps)
        lay.addWidget(self.loop)
        lay.addWidget(self.source)
        self.fps.valueChanged.connect(self._on_user_fps)
        self.loop.toggled.connect(lambda on: setattr(cine, "loop", bool(on)))
        cine.rate_changed.connect(self._show_rate)
        self._show_rate(cine.fps, cine.rate_source)

    def _show_rate(self, fps: float, source: str) -> None:
        self.fps.blockSignals(True)
        self.fps.setValue(fps)
        self.fps.blockSignals(False)
        short = "file" if source.startswith("from the file") else "yours" if source == "set by you" else "default"
        self.source.setText(f"({short})")
        tip = f"Cine frame rate: {fps:g} fps, {source}"
        for w in (self.fps, self.source):
            w.setToolTip(tip)

    def _on_user_fps(self, value: float) -> None:
        self.cine.set_fps(value)
