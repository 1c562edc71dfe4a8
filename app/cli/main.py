"""``care-viewer`` entry point: without a subcommand it starts the GUI."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
from typing import Sequence

# name -> module under app.cli. A module that does not exist yet is simply not offered.
SUBCOMMANDS: dict[str, str] = {
    "gui": "app.cli.gui_cmd",
    "info": "app.cli.info_cmd",
    "ask": "app.cli.ask_cmd",
    "segment": "app.cli.segment_cmd",
    "eval": "app.cli.eval_cmd",
    "models": "app.cli.models_cmd",
    "history": "app.cli.history_cmd",
    "report": "app.cli.report_cmd",
    "pacs": "app.cli.pacs_cmd",
    "export": "app.cli.export_cmd",
}

# Exit codes shared by all subcommands (documented in README).
EXIT_OK = 0
EXIT_USAGE = 1
EXIT_UNREADABLE = 2
EXIT_WEIGHTS_MISSING = 3
EXIT_PACS = 6  # a PACS node failed or refused (app/cli/pacs_cmd.py)


def _load(name: str):
    try:
        return importlib.import_module(SUBCOMMANDS[name])
    except ModuleNotFoundError as exc:
        if exc.name == SUBCOMMANDS[name]:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="care-viewer",
        description="CARE Viewer: auditable, evidence-grounded medical VQA. "
        "Without a subcommand, opens the viewer (optionally on PATH). "
        "`care-viewer --self-test` runs the headless install check.",
    )
    sub = parser.add_subparsers(dest="command")
    for name in SUBCOMMANDS:
        mod = _load(name)
        if mod is None:
            continue
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `care-viewer --self-test [--out DIR]`: the headless install check (app/selftest.py).
    if argv and argv[0] == "--self-test":
        from app.selftest import main as self_test

        return self_test(argv[1:])
    # Bare `care-viewer [PATH] [--options]` means the GUI.
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["gui", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return EXIT_USAGE
    from app.cli.safe_text import neutralised_output

    # The GUI owns no terminal output worth filtering; every other command prints file- and
    # user-derived text, which must not carry terminal escapes (see safe_text).
    guard = neutralised_output() if args.command != "gui" else contextlib.nullcontext()
    try:
        with guard:
            return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
