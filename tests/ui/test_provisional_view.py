"""The provisional first image in the real window: shown and labelled while the header scan
is held, never the target of a run or a measurement, replaced by the sorted series, and gone
when the load is cancelled."""
from __future__ import annotations

import threading

import pytest

from app.study.dicom import scan
from app.ui.slice_painting import PROVISIONAL_LABEL

LOAD_MS = 120_000


class Hold:
    """The scan reads the provisional file, then waits (until ``set``) before the rest;
    ``rearm`` holds the next load the same way."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.calls: list[str] = []

    def set(self) -> None:
        self.event.set()

    def rearm(self) -> None:
        self.calls.clear()
        self.event.clear()


@pytest.fixture
def held_scan(monkeypatch):
    hold = Hold()
    real = scan._scan_one

    def held(path: str):
        hold.calls.append(path)
        if len(hold.calls) > 1:
            hold.event.wait(60)
        return real(path)

    monkeypatch.setattr(scan, "_scan_one", held)
    yield hold
    hold.set()


def _wait_provisional(qtbot, w) -> None:
    qtbot.waitUntil(lambda: w.current_volume is not None and w.current_volume.provisional, timeout=LOAD_MS)


def test_provisional_image_is_labelled_refused_and_replaced(qtbot, main_window, ct_dicom_dir, held_scan):
    w = main_window
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    prov = w.current_volume
    assert w.view.volume is prov and w.view.slice_lines()[0] == PROVISIONAL_LABEL
    assert "Provisional image" in w.status.currentMessage()
    assert w.care.run_target() is None and w.series_browser.list.count() == 0
    held_scan.set()
    qtbot.waitUntil(lambda: not w.is_loading, timeout=LOAD_MS)
    final = w.current_volume
    assert final is not prov and not final.provisional and final.num_slices == 48
    assert w.view.volume is final and w.view.slice_lines()[0].startswith("Im: ")
    assert w.volumes == [final] and w.care.run_target() is not None


def test_cancel_during_the_scan_removes_the_provisional_image(qtbot, main_window, ct_dicom_dir, mr_dicom_dir,
                                                              held_scan):
    w = main_window
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    w.cancel_loading()
    held_scan.set()
    assert w.current_volume is None and w.view.volume is None
    assert not w.is_loading and w.care.run_target() is None
    # With a study open, cancelling goes back to it (the one the Series list still shows).
    w.open_paths([str(mr_dicom_dir)])  # 25 files: a provisional image, not held (the event is set)
    qtbot.waitUntil(lambda: not w.is_loading and bool(w.volumes), timeout=LOAD_MS)
    mr = w.current_volume
    assert mr.num_slices == 25 and not mr.provisional
    held_scan.rearm()
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    w.cancel_loading()
    held_scan.set()
    assert w.current_volume is mr and w.view.volume is mr and w.volumes == [mr]
    assert w.care.run_target() is not None


def test_measurements_of_the_series_are_not_drawn_on_its_provisional_image(qtbot, main_window, ct_dicom_dir,
                                                                         held_scan):
    """Reopening a study whose series has a measurement on slice 0: the provisional image is
    one file (the middle one), so nothing drawn on slice 0 may appear over it."""
    w = main_window
    held_scan.set()
    w.open_paths([str(ct_dicom_dir)])
    qtbot.waitUntil(lambda: not w.is_loading and bool(w.volumes), timeout=LOAD_MS)
    w.view.set_slice(0)
    _draw_length(w.view)
    mc = w.measure
    assert len(mc.measurements()) == 1 and mc.measurements()[0].slice_index == 0 and len(mc._on_slice()) == 1
    held_scan.rearm()
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    assert w.view.slice_index == 0 and mc._on_slice() == [] and mc._shown() == []
    held_scan.set()
    qtbot.waitUntil(lambda: not w.is_loading, timeout=LOAD_MS)


def _draw_length(view) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_M)
    c = view.rect().center()
    left, no = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(view, left, no, c - QPoint(60, 0))
    QTest.mouseMove(view, c)
    QTest.mouseMove(view, c + QPoint(60, 0))
    QTest.mouseRelease(view, left, no, c + QPoint(60, 0))
    QTest.keyClick(view, Qt.Key.Key_Escape)


def test_a_provisional_image_left_on_screen_is_still_refused(qtbot, main_window, ct_dicom_dir, held_scan):
    """Defence in depth: even with no load running, a provisional volume is no run target and
    takes no measurement (the guards read the flag, not only the loading state)."""
    w = main_window
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    prov = w.current_volume
    held_scan.set()
    qtbot.waitUntil(lambda: not w.is_loading, timeout=LOAD_MS)
    w.show_volume(prov)
    assert not w.is_loading and w.current_volume is prov
    assert w.care.run_target() is None
    _draw_length(w.view)
    assert w.measure.measurements() == []
    assert "Wait for the series" in w.status.currentMessage()


def test_cancel_during_the_pixel_fill_never_leaves_the_half_filled_volume(qtbot, main_window, ct_volume,
                                                                          monkeypatch):
    """A volume whose pixels are still being filled is shown as it fills; cancelled there, it must
    not stay on screen as if it were the series (its unfilled slices are blank)."""
    import dataclasses

    import numpy as np

    from app.study import loader

    released = threading.Event()

    def filling(paths, *, progress=None, cancel=None, on_partial=None, on_provisional=None, **_):
        half = dataclasses.replace(ct_volume, array=np.zeros_like(ct_volume.array))
        half.array[: ct_volume.num_slices // 2] = ct_volume.array[: ct_volume.num_slices // 2]
        on_partial(half, ct_volume.num_slices // 2, ct_volume.num_slices)
        while not (cancel() or released.is_set()):
            released.wait(0.02)
        return loader.LoadResult(volumes=[], errors=[], cancelled=bool(cancel()))

    monkeypatch.setattr(loader, "load", filling)
    w = main_window
    w.open_paths(["/nonexistent/filling"])
    qtbot.waitUntil(lambda: w.current_volume is not None, timeout=LOAD_MS)
    assert not w.current_volume.provisional and w.series_browser.list.count() == 0
    w.cancel_loading()
    released.set()
    assert w.current_volume is None and w.care.run_target() is None
