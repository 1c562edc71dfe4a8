"""Drive the real window against a real Orthanc and grab the screen (Xvfb): the study browser
with its results and series thumbnails, the retrieved study with its DICOM SEG as overlay, and
(after a tiny-profile run on a drawn box, sent back with "Send to PACS") the study opened again:
the run's CARE SEG drawn on the CT and its SR listed as a past run from PACS.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_pacs.py [OUT_DIR]

A throw-away HOME; Orthanc (app.devtools.orthanc) on loopback holds the shared chest CT, the
brain MR and a DICOM SEG of the CT's tumour label built here with highdicom (as another tool
would store one). The browser searches every study, shows the CT's series, and "Open study"
retrieves it into the cache and opens it. Screens are grabbed with ImageMagick's
``import -window root`` (what the X server shows).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data"))
CT, MR = DATA / "ct-chest-lung1" / "dicom", DATA / "mr-brain-brain1" / "dicom"
SLICE = 33


def tumour_seg(out: Path) -> Path:
    """The CT's tumour label as a BINARY SEG (highdicom), one frame per labelled slice."""
    import highdicom as hd
    import numpy as np
    import pydicom
    import SimpleITK as sitk

    sources = sorted((pydicom.dcmread(p) for p in CT.glob("*.dcm")), key=lambda d: float(d.ImagePositionPatient[2]))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(DATA / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0
    desc = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Lung tumour",
        segmented_property_category=hd.sr.CodedConcept("49755003", "SCT", "Morphologically abnormal structure"),
        segmented_property_type=hd.sr.CodedConcept("108369006", "SCT", "Neoplasm"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        display_color=hd.color.CIELabColor.from_string("orangered"))
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=label.astype(np.uint8), segmentation_type="BINARY",
        segment_descriptions=[desc], series_instance_uid=hd.UID(), series_number=300, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="Radiology workstation", manufacturer_model_name="manual contouring",
        software_versions="1", device_serial_number="1", series_description="Tumour contour")
    path = out / "seg.dcm"
    seg.save_as(path)
    return path


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-screenshot-")
    from app.devtools.orthanc import OrthancServer
    from app.pacs.nodes import PacsNode, PacsProtocol, save_nodes

    server = OrthancServer(aet="HOSPITALPACS").start()
    try:
        server.upload(sorted(CT.glob("*.dcm")) + sorted(MR.glob("*.dcm")) + [tumour_seg(Path(tempfile.mkdtemp()))])
        save_nodes([PacsNode(name="Hospital PACS", protocol=PacsProtocol.DICOMWEB, url=server.dicomweb_url),
                    PacsNode(name="Hospital PACS (DIMSE)", protocol=PacsProtocol.DIMSE, ae_title=server.aet,
                             host="127.0.0.1", port=server.dicom_port)])
        return run_window(out)
    finally:
        server.stop()


def run_window(out: Path) -> int:
    from PySide6.QtCore import Qt, QTimer

    from app.ui.application import care_application, open_main_window

    app = care_application()
    w = open_main_window((1600, 1000))
    browser = w.pacs.show_browser()
    browser.move(240, 150)
    browser.resize(1150, 640)

    def grab(name: str) -> None:
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(out / name)], check=True)
        print("saved", out / name)

    def searched(n: int) -> None:
        ct_row = next(i for i, s in enumerate(browser.studies) if "CT" in s.modalities)
        browser.table.selectRow(ct_row)
        if state["phase"] == "browse":
            wait_thumbnails()
        else:
            browser.open_button.click()

    def wait_thumbnails(tries: int = 0) -> None:
        items = [browser.series_list.item(i) for i in range(browser.series_list.count())]
        if (not items or any(it.data(Qt.ItemDataRole.UserRole + 1) is None for it in items)) and tries < 100:
            QTimer.singleShot(200, lambda: wait_thumbnails(tries + 1))
            return
        browser.series_list.setCurrentRow(0)
        QTimer.singleShot(500, lambda: (grab("pacs-study-browser.png"), browser.open_button.click()))

    state = {"phase": "browse"}
    node = browser.node

    def loaded(_volumes) -> None:
        browser.hide()
        w.view.set_slice(SLICE)
        w.view.set_zoom(2.0)
        p = w.view.image_to_widget(218, 358)  # centre the tumour
        w.view.pan_by(w.view.width() / 2 - p.x(), w.view.height() / 2 - p.y())
        w.segs.dock.raise_()
        if state["phase"] == "browse":
            QTimer.singleShot(1200, first_open)

    def first_open() -> None:
        grab("pacs-seg-overlay.png")
        print("segments:", [w.segs.panel.list.item(i).text().replace("\n", " / ") for i in range(w.segs.panel.list.count())])
        # A run on a clinician box around the tumour, then Send to PACS.
        care = w.care
        care.ask.set_profile("tiny")
        care.ask.set_question("Is there a mass in the right lung?")
        care.act_draw.setChecked(True)
        a, b = at(198, 339), at(235, 376)
        QTest.mousePress(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        QTest.mouseMove(w.view, b)
        QTest.mouseRelease(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)

    def at(col: float, row: float):
        from PySide6.QtCore import QPoint

        p = w.view.image_to_widget(col + 0.5, row + 0.5)
        return QPoint(round(p.x()), round(p.y()))

    def segmented(outcome) -> None:
        print("box:", outcome.mask and f"{outcome.mask.backend} C={outcome.mask.confidence:.3f}", outcome.error)
        w.care.act_draw.setChecked(False)
        w.care.ask.run_button.click()

    def answered(outcome) -> None:
        rec = outcome.record
        print("run:", rec and rec.status, outcome.error)
        w.run_dicom.send_to_pacs(rec.run_id, node, frozenset({"seg", "sr", "pdf"}))

    def stored(result) -> None:
        print("stored:", len(result.stored), "failed:", result.failed, "|", w.status.currentMessage())
        state["phase"] = "reopen"
        browser.show()
        browser.search()

    def past_runs(summaries) -> None:
        if state["phase"] != "reopen" or not summaries:
            return
        w.care.audit_dock.raise_() if hasattr(w.care, "audit_dock") else None
        QTimer.singleShot(1500, finish)

    def finish() -> None:
        grab("pacs-care-run-reopened.png")
        print("past runs:", [(s.run_id[:8], s.question, s.answer[:40]) for s in w.run_dicom.past_runs.box.summaries])
        print("segments:", [w.segs.panel.list.item(i).text().replace("\n", " / ") for i in range(w.segs.panel.list.count())])
        w.care.shutdown()
        app.quit()

    from PySide6.QtTest import QTest

    w.care.box_segmented.connect(segmented)
    w.care.run_finished.connect(answered)
    w.run_dicom.pacs_stored.connect(stored)
    w.run_dicom.failed.connect(lambda m: (print("FAILED:", m), app.quit()))
    w.run_dicom.past_runs.read.connect(past_runs)
    browser.searched.connect(searched)
    w.series_loaded.connect(loaded)
    QTimer.singleShot(800, browser.search)  # every study on the node (an empty query)
    QTimer.singleShot(600_000, app.quit)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
