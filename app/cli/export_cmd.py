"""``care-viewer export RUN --out DIR [--seg] [--sr] [--pdf] [--deidentify]``: a run as DICOM
files (SEG, TID 1500 SR, Encapsulated PDF) in its source study, for a PACS or a colleague."""
from __future__ import annotations

import argparse

from app.cli.run_args import EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, add_run_arguments, deidentified_note, fail

HELP = "write a run as DICOM SEG / structured report / Encapsulated PDF files (all three by default)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p, out_metavar="DIR", out_help="the folder to write the files into", flags=(
        ("--seg", "the accepted masks as a DICOM Segmentation"),
        ("--sr", "the run as a TID 1500 structured report (Comprehensive 3D SR)"),
        ("--pdf", "the evidence report as Encapsulated PDF"),
        ("--deidentify", "apply the DICOM PS3.15 Basic Profile (new UIDs, no patient identifiers) to every file"),
        ("--force", "replace files of an earlier export of this run"),
    ))


def run(args: argparse.Namespace) -> int:
    from app.dicom_export import ExportError, ExportKind
    from app.dicom_export.bundle import build_run_objects, write_bundle

    kinds = {k for k, on in ((ExportKind.SEG, args.seg), (ExportKind.SR, args.sr), (ExportKind.PDF, args.pdf)) if on}
    if args.out.exists() and not args.out.is_dir():
        return fail(f"--out {args.out}: is a file, not a folder", EXIT_USAGE)
    try:
        bundle = build_run_objects(args.run, kinds or set(ExportKind), args.deidentify)
        paths = write_bundle(bundle, args.out, overwrite=args.force)
    except ExportError as exc:
        return fail(str(exc), EXIT_UNREADABLE)
    for note in bundle.warnings:
        print(f"note: {note}")
    for ds, path in zip(bundle.datasets, paths):
        print(f"{bundle.kind_of(ds).value.upper():3} {path}")
    print(f"run {bundle.run_id}: {len(paths)} DICOM file{'s' if len(paths) != 1 else ''} written to {args.out}"
          + deidentified_note(bundle.deidentified))
    return EXIT_OK
