"""Drive the real app to the ask-and-audit state and save a screenshot (run under Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_ask_audit.py OUT.png

Opens the shared chest CT, goes to the tumour slice, draws a clinician box around the
right-lung tumour with the Draw box tool (LiteMedSAM segments it), asks a question with the
tiny profile, and grabs the window once the audit panel is filled.
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
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "screenshots" / "ask-audit-ct.png")
    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-screenshot-")
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.ui.application import care_application, open_main_window

    app = care_application()
    w = open_main_window((1600, 1000))
    care = w.care

    def point(col: float, row: float) -> QPoint:
        # Boxes are in the display frame: the slice's pixels as the view shows them.
        p = w.view.image_to_widget(col + 0.5, row + 0.5)
        return QPoint(round(p.x()), round(p.y()))

    def loaded(_volumes) -> None:
        w.view.set_slice(SLICE)
        care.ask.set_profile("tiny")
        care.ask.set_question("Is there a mass in the right lung?")
        care.act_draw.setChecked(True)
        a, b = point(BOX[0], BOX[1]), point(BOX[2] - 1, BOX[3] - 1)
        QTest.mousePress(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
        QTest.mouseMove(w.view, b)
        QTest.mouseRelease(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)

    def segmented(outcome) -> None:
        print("box:", outcome.mask and f"{outcome.mask.backend} C={outcome.mask.confidence:.3f}", outcome.error)
        care.act_draw.setChecked(False)
        care.ask.run_button.click()

    def answered(outcome) -> None:
        rec = outcome.record
        print("run:", rec and rec.status, outcome.error)
        QTimer.singleShot(800, grab)

    def grab() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        w.grab().save(str(out))
        print("saved", out)
        # Second view: the audit panel scrolled to the evidence, answers and vote.
        care.audit.scroll.verticalScrollBar().setValue(care.audit.sec_evidence.y())
        QTimer.singleShot(500, grab2)

    def grab2() -> None:
        out2 = out.with_name(out.stem + "-evidence.png")
        w.grab().save(str(out2))
        print("saved", out2)
        care.shutdown()
        app.quit()

    w.series_loaded.connect(loaded)
    care.box_segmented.connect(segmented)
    care.run_finished.connect(answered)
    QTimer.singleShot(0, lambda: w.open_paths([str(CT)]))
    QTimer.singleShot(600_000, app.quit)
    return int(app.exec())


if __name__ == "__main__":
    raise SystemExit(main())
