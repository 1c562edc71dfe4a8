"""Longest GUI event-loop stall while a CARE question runs (target: < 50 ms).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_ui_stall.py [--sleep 2.0] [--runs 3]

A real tiny-profile pipeline (app/devtools/tiny_models.py checkpoints, real LiteMedSAM for a box
around the tumour) answers a question on the shared chest CT from the Ask panel; the VQA
backend's ``generate`` is wrapped to sleep first, standing in for a slow model. A QTimer on
the GUI thread ticks every 5 ms and records the largest gap between ticks, during the run
(including the audit panel being filled and the overlays drawn) and, as the reference, for
the same time with the app idle. Models are loaded by a warm-up run first (loading happens on
the worker too, but its one-off cost would hide the steady state).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class GapMeter:
    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.gaps: list[float] = []

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def start(self) -> None:
        self.gaps.clear()
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return list(self.gaps)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sleep", type=float, default=2.0, help="seconds the VQA backend sleeps per call")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", default=str(Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "dicom"))
    args = ap.parse_args()

    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-bench-")
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from app.ui.main_window import MainWindow
    from app.devtools.tiny_models import ensure_tiny_models

    ensure_tiny_models()
    w = MainWindow()
    w.resize(1440, 900)
    w.show()
    loop = QEventLoop()
    w.series_loaded.connect(lambda _v: loop.quit())
    w.open_paths([args.data])
    loop.exec()
    w.view.set_slice(33)
    pipe = CarePipeline(load_profile("tiny"), max_new_tokens=24, entity_max_new_tokens=24)
    w.care.pipelines.put("tiny", pipe)
    box = (198, 339, 236, 377)

    def ask() -> float:
        done = QEventLoop()
        w.care.run_finished.connect(done.quit)
        t0 = time.perf_counter()
        w.care.start_run("Is there a mass in the right lung?", "tiny", boxes=[box])
        done.exec()
        w.care.run_finished.disconnect(done.quit)
        return time.perf_counter() - t0

    ask()  # warm-up: loads the models
    vlm = pipe.backend("vqa")
    real = vlm.generate

    def slow(requests, *a, **k):
        time.sleep(args.sleep)
        return real(requests, *a, **k)

    vlm.generate = slow
    meter = GapMeter()
    run_max, idle_max, secs = [], [], []
    for _ in range(args.runs):
        meter.start()
        secs.append(ask())
        gaps = meter.stop()
        run_max.append(max(gaps) * 1000)
        # Reference: the same app, idle, for as long as the run took.
        meter.start()
        idle = QEventLoop()
        from PySide6.QtCore import QTimer

        QTimer.singleShot(int(secs[-1] * 1000), idle.quit)
        idle.exec()
        idle_max.append(max(meter.stop()) * 1000)
    print(f"runs: {args.runs}, run time {statistics.median(secs):.2f} s (VQA and entity calls each slowed by {args.sleep:.1f} s)")
    print(f"longest event-loop stall during a run: {max(run_max):.1f} ms (median over runs {statistics.median(run_max):.1f} ms)")
    print(f"longest stall idle (reference, same duration): {max(idle_max):.1f} ms")
    print(f"ratio run/idle: {max(run_max) / max(max(idle_max), 1e-3):.2f}; target < 50 ms: "
          f"{'met' if max(run_max) < 50 else 'NOT met'}")
    # The one GUI-thread job a run causes: filling the audit panel and drawing its overlays.
    rec = w.care.audit.record
    fill = []
    for _ in range(5):
        t0 = time.perf_counter()
        w.care.audit.show_record(rec)
        app.processEvents()
        fill.append((time.perf_counter() - t0) * 1000)
    print(f"audit panel fill + overlay repaint on the GUI thread: {statistics.median(fill):.1f} ms (median of 5)")
    w.care.shutdown()
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
