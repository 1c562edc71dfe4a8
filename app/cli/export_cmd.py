"""``care-viewer export RUN --out DIR [--seg] [--sr] [--pdf] [--deidentify]``: a run as DICOM
files (SEG, TID 1500 SR, Encapsulated PDF) in its source study, for a PACS or a colleague."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a run as DICOM SEG / structured report / Encapsulated PDF files (all three by default)"

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN",
                   help="a run id (or a unique prefix) from `care-viewer history`, or a run folder / run.json "
                        "written by `care-viewer ask --out DIR`")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="DIR", help="the folder to write the files into")
    p.add_argument("--seg", action="store_true", help="the accepted masks as a DICOM Segmentation")
    p.add_argument("--sr", action="store_true", help="the run as a TID 1500 structured report (Comprehensive 3D SR)")
    p.add_argument("--pdf", action="store_true", help="the evidence report as Encapsulated PDF")
    p.add_argument("--deidentify", action="store_true",
                   help="apply the DICOM PS3.15 Basic Profile (new UIDs, no patient identifiers) to every file")
    p.add_argument("--force", action="store_true", help="replace files of an earlier export of this run")


def run(args: argparse.Namespace) -> int:
    from app.dicom_export import ExportError, ExportKind
    from app.dicom_export.bundle import build_run_objects, write_bundle

    kinds = {k for k, on in ((ExportKind.SEG, args.seg), (ExportKind.SR, args.sr), (ExportKind.PDF, args.pdf)) if on}
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out}: is a file, not a folder", file=sys.stderr)
        return EXIT_USAGE
    try:
        bundle = build_run_objects(args.run, kinds or set(ExportKind), args.deidentify)
        paths = write_bundle(bundle, args.out, overwrite=args.force)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    for note in bundle.warnings:
        print(f"note: {note}")
    for ds, path in zip(bundle.datasets, paths):
        print(f"{bundle.kind_of(ds).value.upper():3} {path}")
    print(f"run {bundle.run_id}: {len(paths)} DICOM file{'s' if len(paths) != 1 else ''} written to {args.out}"
          + (" (de-identified)" if bundle.deidentified else ""))
    return EXIT_OK
