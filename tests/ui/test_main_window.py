"""MainWindow: loading in the background (real loader), errors, drag-and-drop, tags."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QDockWidget, QLabel

from app.study.reformat import Plane
from ui_helpers import focus_voxel


def _wait_loaded(qtbot, w, timeout=30000):
    qtbot.waitUntil(lambda: not w.is_loading, timeout=timeout)


def test_background_load_shows_first_image_before_finishing(qtbot, main_window, ct_dicom_dir):
    w = main_window
    seen = []

    def on_shown(volume):
        # Runs from the worker's partial signal: loading must still be under way.
        seen.append((w.is_loading, volume.array.shape, w.view.frame_shape(), volume.array[0].any(), volume.provisional))

    w.volume_shown.connect(on_shown)
    partials = []
    w.open_paths([ct_dicom_dir])
    w._worker.signals.partial.connect(lambda payload: partials.append(payload[1:]))
    assert w.status.progress.isVisible()
    _wait_loaded(qtbot, w)
    assert len(seen) >= 2, "no image was shown"
    # First the provisional image (one file, app/study/dicom/scan.py), then the sorted series.
    assert seen[0][0] and seen[0][1] == (1, 512, 512) and seen[0][4]
    loading, shape, frame_shape, first_slice_filled, provisional = seen[1]
    assert loading and shape == (48, 512, 512) and frame_shape == (512, 512) and first_slice_filled
    assert not provisional
    assert partials and partials[-1] == (48, 48)
    assert not w.status.progress.isVisible()
    assert [v.num_slices for v in w.volumes] == [48]
    assert w.series_browser.list.count() == 1
    assert "48 images" in w.series_browser.list.item(0).text()
    assert w.view.slice_index == 24 and w.status.slice.text() == "Slice 25/48"
    assert w.status.window_label.text() == "C -600 / W 1500"  # the file's window
    # Cursor readout in the status bar.
    v = w.view
    qtbot.mouseMove(v, focus_voxel(v, 150, 256))
    hu = int(w.current_volume.array[24, 256, 150])
    assert w.status.value.text() == f"HU {hu}"
    assert w.status.voxel.text() == "[150, 256, 24]"
    assert w.status.position.text().startswith("LPS (")


def test_cursor_readout_does_not_outlive_its_image(qtbot, main_window, ct_dicom_dir, mr_dicom_dir):
    """Seen in a walk: after a box was drawn on a radiograph (the draw tool reports the readout
    itself) and a colour ultrasound was opened, the status bar still showed the radiograph's
    voxel [1200, 1401, 0] and value, outside the new 320x240 image."""
    w = main_window
    w.open_paths([ct_dicom_dir])
    _wait_loaded(qtbot, w)
    # As the draw tool does (app/ui/override_tools.py): a readout with no hover position kept.
    w.view.cursor_moved.emit(w.view.cursor_info_at(QPointF(focus_voxel(w.view, 150, 256))))
    assert w.status.value.isVisibleTo(w.status) and w.status.voxel.text() == "[150, 256, 24]"
    w.open_paths([mr_dicom_dir])
    _wait_loaded(qtbot, w)
    assert w.current_volume.modality == "MR"
    assert not w.status.value.isVisibleTo(w.status) and not w.status.voxel.isVisibleTo(w.status)


def test_tag_browser_follows_slice_and_filters(qtbot, main_window, ct_dicom_dir):
    w = main_window
    w.open_paths([str(ct_dicom_dir)])
    _wait_loaded(qtbot, w)
    tb = w.tag_browser
    qtbot.waitUntil(lambda: tb.caption.text() == "Instance 25 of 48")
    all_rows = tb.proxy.rowCount()
    assert all_rows > 20
    tb.search.setText("patient")
    tb.apply_filter()
    kws = tb.visible_keywords()
    assert "PatientName" in kws and "PatientID" in kws and "Rows" not in kws
    tb.search.setText("(0028,0030)")
    tb.apply_filter()
    assert tb.visible_keywords() == ["PixelSpacing"]
    tb.search.setText("MONOCHROME2")  # by value
    tb.apply_filter()
    assert tb.visible_keywords() == ["PhotometricInterpretation"]
    tb.search.setText("")
    tb.apply_filter()
    assert tb.proxy.rowCount() == all_rows
    w.view.set_slice(3)
    qtbot.waitUntil(lambda: tb.caption.text() == "Instance 4 of 48")
    inst = [tb.model.index(r, 3).data() for r in range(tb.model.rowCount()) if tb.model.index(r, 1).data() == "InstanceNumber"]
    assert inst and int(inst[0]) == int(w.current_volume.headers[3].InstanceNumber)


def test_bad_file_shows_reason_without_crashing(qtbot, main_window, tmp_path):
    bad = tmp_path / "broken.dcm"
    bad.write_bytes(b"this is not a DICOM file at all" * 10)
    w = main_window
    failures = []
    w.load_failed.connect(failures.append)
    w.open_paths([bad])
    _wait_loaded(qtbot, w)
    assert failures and "broken.dcm" in failures[0]
    assert w.current_volume is None
    assert w.view._message_is_error and "broken.dcm" in w.view._message
    assert "broken.dcm" in w.statusBar().currentMessage()
    # Still usable afterwards.
    w.open_paths([tmp_path / "does-not-exist"])
    _wait_loaded(qtbot, w)
    assert "no such file" in w.view._message


def test_drop_folder_opens_series(qtbot, main_window, mr_dicom_dir):
    w = main_window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(mr_dicom_dir))])
    ev = QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    w.dropEvent(ev)
    assert ev.isAccepted()
    _wait_loaded(qtbot, w)
    assert w.current_volume is not None and w.current_volume.modality == "MR"
    assert w.view.frame_shape() == (256, 256)
    assert w.windowTitle().endswith("CARE Viewer")
    # Reformat actions are enabled for a volume and switch the plane.
    w.act_planes[Plane.SAGITTAL].trigger()
    assert w.view.plane == Plane.SAGITTAL


def test_add_dock_tabs_panels_on_the_right(qtbot, main_window):
    w = main_window
    dock = w.add_dock("Ask", QLabel("question panel"))
    assert isinstance(dock, QDockWidget)
    assert w.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    qtbot.waitUntil(lambda: w.tags_dock in w.tabifiedDockWidgets(dock))
    assert dock.toggleViewAction() in w.panels_menu.actions()


def test_open_sample_study(qtbot, main_window):
    w = main_window
    w.open_sample()
    _wait_loaded(qtbot, w)
    v = w.current_volume
    assert v is not None and v.modality == "CT" and v.num_slices > 1
    assert w.view.frame_shape() == v.array.shape[1:3]


def test_cancel_loading_keeps_the_app_usable(qtbot, main_window, ct_dicom_dir):
    w = main_window
    w.open_paths([ct_dicom_dir])
    worker = w._worker
    w.cancel_loading()
    assert not w.is_loading and not w.status.progress.isVisible()
    assert worker.wait(10.0)
    qtbot.wait(50)  # let queued signals of the cancelled worker arrive and be ignored
    assert w.volumes == []
    w.open_paths([ct_dicom_dir])
    _wait_loaded(qtbot, w)
    assert w.current_volume is not None and w.current_volume.num_slices == 48
