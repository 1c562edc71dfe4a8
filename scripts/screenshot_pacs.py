"""Drive the real window against a real Orthanc and grab the screen (Xvfb): the study browser
with its results and series thumbnails, then the retrieved study with its DICOM SEG as overlay.

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
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("CARE Viewer")
    from app.ui.main_window import MainWindow
    from app.ui.theme import app_icon, apply_theme

    apply_theme(app)
    app.setWindowIcon(app_icon())
    w = MainWindow()
    w.move(0, 0)
    w.resize(1600, 1000)
    w.show()
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
        wait_thumbnails()

    def wait_thumbnails(tries: int = 0) -> None:
        items = [browser.series_list.item(i) for i in range(browser.series_list.count())]
        if (not items or any(it.data(Qt.ItemDataRole.UserRole + 1) is None for it in items)) and tries < 100:
            QTimer.singleShot(200, lambda: wait_thumbnails(tries + 1))
            return
        browser.series_list.setCurrentRow(0)
        QTimer.singleShot(500, lambda: (grab("pacs-study-browser.png"), browser.open_button.click()))

    def loaded(_volumes) -> None:
        browser.hide()
        w.view.set_slice(SLICE)
        w.view.set_zoom(2.0)
        p = w.view.image_to_widget(218, 358)  # centre the tumour
        w.view.pan_by(w.view.width() / 2 - p.x(), w.view.height() / 2 - p.y())
        w.segs.dock.raise_()
        QTimer.singleShot(1200, finish)

    def finish() -> None:
        grab("pacs-seg-overlay.png")
        print("status:", w.status.currentMessage())
        print("segments:", [w.segs.panel.list.item(i).text().replace("\n", " / ") for i in range(w.segs.panel.list.count())])
        w.care.shutdown()
        app.quit()

    browser.searched.connect(searched)
    w.series_loaded.connect(loaded)
    QTimer.singleShot(800, browser.search)  # every study on the node (an empty query)
    QTimer.singleShot(300_000, app.quit)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
