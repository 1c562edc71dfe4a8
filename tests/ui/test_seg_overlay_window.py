"""A study folder holding a DICOM SEG and its series opens in the real window with the SEG's
segments drawn on the series: the tinted screen pixels are exactly the label's, in the display
frame, the Segmentations panel names each segment, and unticking one hides it."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.study.display_frame import display_frame
from tests.study.seg_factory import axial_seg, ct_sources

LOAD_MS = 120_000


@pytest.fixture(scope="module")
def label(shared_data) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0


def _rendered(view) -> tuple[np.ndarray, np.ndarray]:
    """(grey base, composited RGB) of the slice on screen, as the renderer drew them."""
    v, g, k = view.volume, view.geometry_, view.slice_index
    frame = view._renderer.frame(v, g, k, view.window, view.overlays.stack)
    return view._renderer.base(v, g, k, view.window), frame.array


def test_study_with_seg_opens_with_its_segments_as_overlays(qtbot, main_window, tmp_path, ct_dicom_dir, label, ct_tumour):
    study = tmp_path / "study"
    shutil.copytree(ct_dicom_dir, study / "ct")
    axial_seg(ct_sources(ct_dicom_dir), label, color="red", segments=2).save_as(study / "seg.dcm")
    w = main_window
    with qtbot.waitSignal(w.series_loaded, timeout=LOAD_MS):
        w.open_paths([str(study)])
    assert w.series_browser.list.count() == 1  # the SEG is an overlay, not a series
    panel = w.segs.panel
    assert panel.list.count() == 2
    assert panel.list.item(0).text().startswith("Tumour") and panel.list.item(1).text().startswith("Shifted copy")
    assert "1 DICOM SEG object" in panel.caption.text()

    w.view.set_slice(ct_tumour.slice_index)
    base, shown = _rendered(w.view)
    tinted = np.any(shown != base[..., None], axis=-1)
    expected = display_frame(w.current_volume).from_array(ct_tumour.mask | np.roll(ct_tumour.mask, 40, axis=1))
    assert tinted.any() and np.array_equal(tinted, expected)
    # The tumour segment is red (its RecommendedDisplayCIELabValue), the copy blue.
    r, c = np.argwhere(display_frame(w.current_volume).from_array(ct_tumour.mask))[0]
    assert shown[r, c, 0] > shown[r, c, 2]

    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    base, shown = _rendered(w.view)
    tinted = np.any(shown != base[..., None], axis=-1)
    assert np.array_equal(tinted, display_frame(w.current_volume).from_array(np.roll(ct_tumour.mask, 40, axis=1)))


def test_opening_another_study_drops_the_segments(qtbot, main_window, tmp_path, ct_dicom_dir, mr_dicom_dir, label):
    study = tmp_path / "study"
    shutil.copytree(ct_dicom_dir, study / "ct")
    axial_seg(ct_sources(ct_dicom_dir), label).save_as(study / "seg.dcm")
    w = main_window
    with qtbot.waitSignal(w.series_loaded, timeout=LOAD_MS):
        w.open_paths([str(study)])
    assert any(n.startswith("seg:") for n in w.view.overlays.names())
    with qtbot.waitSignal(w.series_loaded, timeout=LOAD_MS):
        w.open_paths([str(mr_dicom_dir)])
    assert w.segs.panel.list.count() == 0
    assert not any(n.startswith("seg:") for n in w.view.overlays.names())


def test_segments_beyond_the_memory_budget_wait_for_a_tick(qtbot, main_window, tmp_path, ct_dicom_dir, label, monkeypatch):
    import app.ui.seg_overlays as seg_overlays

    monkeypatch.setattr(seg_overlays, "DRAW_BUDGET_VOXELS", int(np.prod(label.shape)))  # one segment's worth
    study = tmp_path / "study"
    shutil.copytree(ct_dicom_dir, study / "ct")
    axial_seg(ct_sources(ct_dicom_dir), label, segments=2).save_as(study / "seg.dcm")
    w = main_window
    with qtbot.waitSignal(w.series_loaded, timeout=LOAD_MS):
        w.open_paths([str(study)])
    panel = w.segs.panel
    first, second = panel.list.item(0), panel.list.item(1)
    assert first.checkState() == Qt.CheckState.Checked and second.checkState() == Qt.CheckState.Unchecked
    assert [n for n in w.view.overlays.names() if n.startswith("seg:")] == ["seg:0:1"]
    assert "1 of 2 segments are not drawn yet" in panel.details.text()
    second.setCheckState(Qt.CheckState.Checked)
    assert [n for n in w.view.overlays.names() if n.startswith("seg:")] == ["seg:0:1", "seg:0:2"]
    assert np.array_equal(w.view.overlays.get("seg:0:2").mask, np.roll(label, 40, axis=2))
