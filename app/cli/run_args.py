"""What ``care-viewer export`` and ``care-viewer report`` share: the RUN argument, ``--out``, the
flag options beside it, and the one-line failure (exit codes: app/cli/main.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from app.cli.main import EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE

RUN_HELP = ("a run id (or a unique prefix) from `care-viewer history`, or a run folder / run.json "
            "written by `care-viewer ask --out DIR`")


def add_run_arguments(p: argparse.ArgumentParser, *, out_metavar: str, out_help: str,
                      flags: Sequence[tuple[str, str]]) -> None:
    """RUN, a required ``--out/-o`` path, then ``flags`` ((option, help) store_true pairs) in
    the given order, so each command's --help reads as it always has."""
    p.add_argument("run", metavar="RUN", help=RUN_HELP)
    p.add_argument("--out", "-o", type=Path, required=True, metavar=out_metavar, help=out_help)
    for option, text in flags:
        p.add_argument(option, action="store_true", help=text)


def fail(message: str, code: int = EXIT_UNREADABLE) -> int:
    """Print ``error: message`` on stderr and return ``code``."""
    print(f"error: {message}", file=sys.stderr)
    return code


def deidentified_note(on: bool) -> str:
    """The suffix both commands put on their last line."""
    return " (de-identified)" if on else ""


__all__ = ["EXIT_OK", "EXIT_UNREADABLE", "EXIT_USAGE", "RUN_HELP", "add_run_arguments", "deidentified_note", "fail"]
