"""Drive the real window to measurements on the shared chest CT and grab the screen (Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_measurements.py OUT.png

Opens the CT at the tumour slice and measures with the real keys and mouse: an ellipse ROI
on the right-lung tumour, a length across the trachea, an angle and a rectangle ROI in the air
outside the patient; the Measurements panel is shown. The screen is grabbed with
ImageMagick's ``import -window root`` (what the X server shows, not a widget render).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CT = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "dicom"
SLICE = 33


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots" / "measurements.png")
    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-screenshot-")
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.ui.application import care_application, open_main_window

    app = care_application()
    w = open_main_window((1600, 1000))
    view, mc = w.view, w.measure
    no, left = Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton

    def at(col: float, row: float) -> QPoint:
        p = view.image_to_widget(col, row)
        return QPoint(round(p.x()), round(p.y()))

    def key(k: Qt.Key) -> None:
        QTest.keyClick(view, k)
        if mc.tool.kind is None:
            raise SystemExit(f"key {k} did not turn a Measure tool on (is the window active?)")

    def drag(k: Qt.Key, a: tuple[float, float], b: tuple[float, float]) -> None:
        key(k)
        QTest.mousePress(view, left, no, at(*a))
        QTest.mouseMove(view, at((a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
        QTest.mouseMove(view, at(*b))
        QTest.mouseRelease(view, left, no, at(*b))

    def loaded(_volumes) -> None:
        view.set_slice(SLICE)
        w.activateWindow()  # no window manager under Xvfb: the shortcuts need an active window
        QTimer.singleShot(500, measure)

    def measure() -> None:
        view.setFocus()
        drag(Qt.Key.Key_Q, (30, 40), (110, 90))  # air outside the patient
        key(Qt.Key.Key_A)
        for c, r in ((300, 130), (256, 95), (215, 130)):  # arm end, vertex, arm end
            QTest.mouseClick(view, left, no, at(c, r))
        drag(Qt.Key.Key_M, (258, 324), (285, 324))  # across the trachea
        drag(Qt.Key.Key_E, (197, 338), (237, 378))  # the tumour (label box 198..236 x 339..377)
        QTest.keyClick(view, Qt.Key.Key_Escape)  # tool off; the ellipse stays selected
        mc.dock.raise_()
        for row in mc.panel.rows():
            print(" | ".join(row))
        QTimer.singleShot(1200, grab)

    def grab() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["import", "-window", "root", str(out)], check=True)
        print("saved", out)
        w.care.shutdown()
        app.quit()

    w.series_loaded.connect(loaded)
    QTimer.singleShot(0, lambda: w.open_paths([str(CT)]))
    QTimer.singleShot(300_000, app.quit)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
