"""``care-viewer [PATH ...] [--sample | --empty]``: open the viewer.

Without a path it opens the bundled sample study, so a bare ``care-viewer`` shows an
image. Only Qt and the viewer's own modules are imported before the window shows;
loaders (pydicom, SimpleITK) load on the worker thread, models never at start-up.
"""
from __future__ import annotations

import argparse
import os
import time

HELP = "open the viewer (default when no subcommand is given)"

_T0 = time.perf_counter()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="DICOM folder(s) or image file(s) to open")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--sample", action="store_true", help="open the bundled sample CT study")
    group.add_argument("--empty", action="store_true", help="start without opening anything")
    # For measuring start-up: print seconds from process start to the first painted
    # window, then quit (benchmarks and the README's start-up figure use it).
    parser.add_argument("--startup-time", action="store_true", help=argparse.SUPPRESS)


def _process_age() -> float:
    """Seconds since this process started (Linux /proc; else since this module loaded)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _T0


def run(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer

    from app.ui.application import care_application, open_main_window

    app = care_application()
    window = open_main_window()

    if args.startup_time:
        # The first paint has happened once the event loop runs the zero timer.
        def report() -> None:
            print(f"startup: first window shown after {_process_age():.3f} s", flush=True)
            app.quit()

        QTimer.singleShot(0, report)
        return int(app.exec())

    if args.sample:
        QTimer.singleShot(0, window.open_sample)
    elif args.paths:
        missing = [p for p in args.paths if not os.path.exists(p)]
        if missing and len(missing) == len(args.paths):
            reason = "\n".join(f"{p}: no such file or folder" for p in missing)
            QTimer.singleShot(0, lambda: window._show_failure(f"Could not open {reason}"))
        else:
            present = [p for p in args.paths if os.path.exists(p)]
            if missing:
                QTimer.singleShot(
                    0, lambda: window.status.showMessage(f"Not found: {', '.join(missing)}", 15000)
                )
            QTimer.singleShot(0, lambda: window.open_paths(present))
    elif not args.empty:
        QTimer.singleShot(0, window.open_sample)
    return int(app.exec())
