"""The GUI keeps processing events while a (deliberately slow) CARE run works.

No timing assertions here (benchmarks/bench_ui_stall.py measures the longest stall); this
only checks the event loop keeps ticking throughout a real tiny-profile run whose VQA
backend is slowed down, i.e. the pipeline is not on the GUI thread."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QTimer

from tests.ui.care_session import QUESTION, isolate_settings, open_ct, tiny_pipeline

pytestmark = pytest.mark.slow
SLOW_S = 1.0


def test_event_loop_keeps_running_during_a_slow_run(qtbot, tmp_path, monkeypatch, ct_dicom_dir):
    isolate_settings(monkeypatch, tmp_path)
    from app.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    open_ct(qtbot, w, ct_dicom_dir)
    pipe = tiny_pipeline()
    w.care.pipelines.put("tiny", pipe)
    vlm = pipe.backend("vqa")
    real = vlm.generate

    def slow_generate(requests, *args, **kwargs):
        time.sleep(SLOW_S)  # a slow backend: the GUI must not wait for it
        return real(requests, *args, **kwargs)

    monkeypatch.setattr(vlm, "generate", slow_generate)
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    stages = []
    # The run starts once the audit trail is open (off the GUI thread): listen from its start.
    w.care.run_started.connect(lambda handle: handle.signals.partial.connect(lambda p: stages.append(p.stage)))
    with qtbot.waitSignal(w.care.run_finished, timeout=120_000) as sig:
        w.care.start_run(QUESTION, "tiny")
        timer.start()
    timer.stop()
    rec = sig.args[0].record
    assert rec.status == "completed"
    # The run took at least the two slowed calls (entities + VQA); the timer kept firing
    # through it, and progress arrived stage by stage while it ran.
    assert len(ticks) > 40
    assert len(set(stages)) >= 4
    w.care.shutdown()
