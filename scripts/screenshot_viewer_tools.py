"""Screenshots of the viewer tools in the real window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_viewer_tools.py [OUT_DIR]

Opens the shared chest CT on the tumour slice and saves, with ImageMagick's ``import -window
root`` (what the X screen shows):
- viewer-2x2-mpr.png: the 2x2 layout linked on the tumour (lung window, F2), reference lines;
- viewer-flipped.png: one view flipped left-right (H) with the Ask panel's note;
- viewer-cine.png: pydicom-data's 120-frame ultrasound cine playing at its FrameTime rate.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CT = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "dicom"
SLICE, TUMOUR = 33, (217, 358)  # tumour centre (col, row) on the axial slice


def main() -> int:
    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-screenshot-")
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    from pydicom.data import get_testdata_file
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.ui.application import care_application, open_main_window
    from app.ui.layouts import Layout
    from app.ui.viewer_tools import apply_key_preset

    app = care_application()
    w = open_main_window((1600, 1000))
    steps: list = []

    def shot(name: str) -> None:
        app.processEvents()
        path = out / name
        subprocess.run(["import", "-window", "root", str(path)], check=True)
        print("saved", path)

    def after(ms: int, fn) -> None:
        QTimer.singleShot(ms, fn)

    def loaded(_volumes) -> None:
        if steps:
            return
        steps.append("ct")
        w.view.set_slice(SLICE)
        apply_key_preset(w, "lung")
        w.tools.layouts.set_layout(Layout.FOUR)
        after(600, link)

    def link() -> None:
        v = w.view
        g = v.geometry_
        _, col, row = g.screen_position((TUMOUR[0], TUMOUR[1], SLICE))
        p = v.image_to_widget(col + 0.5, row + 0.5)
        QTest.mouseClick(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(round(p.x()), round(p.y())))
        after(600, lambda: (shot("viewer-2x2-mpr.png"), flipped()))

    def flipped() -> None:
        w.tools.layouts.set_layout(Layout.SINGLE)
        w.care.ask.set_question("Is there a mass in the right lung?")
        w.view.flip_horizontal()
        after(800, lambda: (shot("viewer-flipped.png"), cine()))

    def cine() -> None:
        w.view.reset_view()
        w.series_loaded.disconnect(loaded)
        w.series_loaded.connect(lambda _v: after(300, play))
        w.open_paths([get_testdata_file("color3d_jpeg_baseline.dcm")])

    def play() -> None:
        w.tools.cine.play()
        after(1500, lambda: (shot("viewer-cine.png"), w.tools.cine.pause(), w.care.shutdown(), app.quit()))

    w.series_loaded.connect(loaded)
    w.open_paths([CT])
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
