"""The background worker helper, and the start-up import budget of the GUI."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from app.ui.workers import Worker


def test_worker_reports_progress_partial_and_result(qtbot):
    def task(ctx):
        for i in range(3):
            ctx.progress(i + 1, 3, f"step {i + 1}")
        ctx.partial("half")
        return 42

    w = Worker(task, name="Sum")
    progress, partial = [], []
    w.signals.progress.connect(lambda d, t, m: progress.append((d, t, m)))
    w.signals.partial.connect(partial.append)
    with qtbot.waitSignal(w.signals.finished, timeout=5000) as blocker:
        w.start()
    assert blocker.args == [42]
    assert progress == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert partial == ["half"]


def test_worker_error_is_one_line(qtbot):
    def task(ctx):
        raise ValueError("weights file is truncated\nmore detail")

    w = Worker(task, name="Segmentation")
    with qtbot.waitSignal(w.signals.errored, timeout=5000) as blocker:
        w.start()
    assert blocker.args == ["Segmentation failed: weights file is truncated"]


def test_worker_cooperative_cancel(qtbot):
    def task(ctx):
        while not ctx.cancelled():
            time.sleep(0.005)
        return "stopped"

    w = Worker(task)
    finished = []
    w.signals.finished.connect(finished.append)
    with qtbot.waitSignal(w.signals.cancelled, timeout=5000):
        w.start()
        w.cancel()
    assert w.wait(2.0) and finished == []


def test_gui_start_imports_no_heavy_libraries():
    code = (
        "import sys, os; os.environ['QT_QPA_PLATFORM']='offscreen'\n"
        "from PySide6.QtWidgets import QApplication; qapp = QApplication([])\n"
        "import app.cli.gui_cmd, app.ui.main_window\n"
        "from app.ui.theme import apply_theme; apply_theme(qapp)\n"
        "w = app.ui.main_window.MainWindow(); w.show(); qapp.processEvents()\n"
        "heavy = [m for m in ('torch', 'transformers', 'SimpleITK', 'pydicom', 'cv2') if m in sys.modules]\n"
        "print('heavy:' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "heavy:"


@pytest.mark.parametrize("argv", [["--empty"], ["/no/such/folder"]])
def test_gui_arguments_parse(argv):
    from app.cli.main import build_parser

    args = build_parser().parse_args(["gui", *argv])
    assert args._module.__name__ == "app.cli.gui_cmd"
    assert args.empty == ("--empty" in argv)


def test_qt_binding_keeps_none_refcount(qapp):
    """PySide6 6.12.0 on Python 3.11 drops a reference to None on every void call
    (setText, setPen, update...), so a viewer that paints for a while aborts with
    'deallocating None'. Guard against installing such a build."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
    assert sys.getrefcount(None) - before > -100
