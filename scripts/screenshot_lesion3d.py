"""Drive the real app to a propagated 3-D lesion and save a screenshot (run under Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_lesion3d.py OUT.png

Opens the shared chest CT, goes to the tumour slice, turns on the box tool's 3-D option, draws
a box around the right-lung tumour (LiteMedSAM segments it, then follows it through the
neighbouring slices) and grabs the window with the 3-D lesion panel and its confidence strip,
then once more on the lesion's first slice.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CT = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "dicom"
SLICE, BOX = 33, (198, 339, 236, 377)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots" / "lesion3d-ct.png")
    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-screenshot-")
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.ui.application import care_application, open_main_window

    app = care_application()
    w = open_main_window((1600, 1000))
    care = w.care

    def point(col: float, row: float) -> QPoint:
        p = w.view.image_to_widget(col + 0.5, row + 0.5)  # boxes are in the display frame
        return QPoint(round(p.x()), round(p.y()))

    def loaded(_volumes) -> None:
        w.view.set_slice(SLICE)
        care.lesion3d.act_3d.setChecked(True)
        a, b = point(BOX[0], BOX[1]), point(BOX[2] - 1, BOX[3] - 1)
        QTest.mousePress(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        QTest.mouseMove(w.view, b)
        QTest.mouseRelease(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)

    def finished(lesion) -> None:
        print("lesion:", lesion and lesion.to_dict()["slices"], lesion and lesion.volume_ml)
        care.act_draw.setChecked(False)
        QTimer.singleShot(800, grab)

    def grab() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(out))
        print("saved", out)
        les = care.lesion3d.lesion
        if les is not None:
            care.lesion3d.go_to(les.first)
        QTimer.singleShot(500, grab2)

    def grab2() -> None:
        out2 = out.with_name(out.stem + "-first-slice.png")
        w.grab().save(str(out2))
        print("saved", out2)
        care.shutdown()
        app.quit()

    w.series_loaded.connect(loaded)
    care.lesion3d.finished.connect(finished)
    QTimer.singleShot(0, lambda: w.open_paths([str(CT)]))
    QTimer.singleShot(900_000, app.quit)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
