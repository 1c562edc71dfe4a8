"""The provisional first image in the real window: shown and labelled while the header scan
is held, never the target of a run or a measurement, replaced by the sorted series, and gone
when the load is cancelled."""
from __future__ import annotations

import threading

import pytest

from app.study.dicom import scan
from app.ui.slice_painting import PROVISIONAL_LABEL

LOAD_MS = 120_000


@pytest.fixture
def held_scan(monkeypatch):
    """The scan reads the provisional file, then waits (until ``release``) before the rest."""
    release = threading.Event()
    calls: list[str] = []
    real = scan._scan_one

    def held(path: str):
        calls.append(path)
        if len(calls) > 1:
            release.wait(60)
        return real(path)

    monkeypatch.setattr(scan, "_scan_one", held)
    yield release
    release.set()


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


def test_cancel_during_the_scan_removes_the_provisional_image(qtbot, main_window, ct_dicom_dir, held_scan):
    w = main_window
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    w.cancel_loading()
    held_scan.set()
    assert w.current_volume is None and w.view.volume is None
    assert not w.is_loading and w.care.run_target() is None


def test_a_provisional_image_left_on_screen_is_still_refused(qtbot, main_window, ct_dicom_dir, held_scan):
    """Defence in depth: even with no load running, a provisional volume is no run target and
    takes no measurement (the guards read the flag, not only the loading state)."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    w = main_window
    w.open_paths([str(ct_dicom_dir)])
    _wait_provisional(qtbot, w)
    prov = w.current_volume
    held_scan.set()
    qtbot.waitUntil(lambda: not w.is_loading, timeout=LOAD_MS)
    w.show_volume(prov)
    assert not w.is_loading and w.current_volume is prov
    assert w.care.run_target() is None
    view = w.view
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_M)
    c = view.rect().center()
    left, no = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(view, left, no, c - QPoint(60, 0))
    QTest.mouseMove(view, c)
    QTest.mouseMove(view, c + QPoint(60, 0))
    QTest.mouseRelease(view, left, no, c + QPoint(60, 0))
    assert w.measure.measurements() == []
    assert "Wait for the series" in w.status.currentMessage()
