"""``care-viewer report RUN --out FILE.pdf``: the evidence report of one run as a PDF."""
from __future__ import annotations

import argparse
from pathlib import Path

from app.cli.run_args import EXIT_OK, EXIT_UNREADABLE, EXIT_USAGE, add_run_arguments, deidentified_note, fail

HELP = "write the evidence report (PDF) of a run from the audit trail or a run folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p, out_metavar="FILE.pdf", out_help="the PDF to write (refused when it exists, unless --force)",
                      flags=(("--force", "replace an existing --out file"),
                             ("--deidentify", "leave out the patient's name, ID, birth date, accession, institution, "
                                              "UIDs and file paths")))
    p.add_argument("--page-size", choices=("A4", "Letter"), default="A4", type=_page_size,
                   help="paper size (default A4)")


def _page_size(text: str) -> str:
    """Case-insensitive: a4 / A4 / letter / LETTER."""
    return {"a4": "A4", "letter": "Letter"}.get(text.strip().lower(), text)


def _from_folder(path: Path):
    """(record, overrides, patient) of a run folder; the audit store adds overrides if it knows the run."""
    from app.audit.store import AuditStore, AuditStoreError
    from app.pipeline.run_io import read_run

    record = read_run(path)
    overrides, patient = [], None
    try:
        with AuditStore() as store:
            loaded = store.load_run(record.run_id, load_images=False)
            overrides, patient = loaded.overrides, loaded.patient
    except AuditStoreError:
        pass  # a headless run that never reached the audit trail
    return record, overrides, patient


def run(args: argparse.Namespace) -> int:
    from app.audit.report import build_report, failure_reason
    from app.audit.store import AuditStore, AuditStoreError

    target = Path(args.run)
    try:
        if target.exists():
            try:
                record, overrides, patient = _from_folder(target)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                return fail(f"{target}: not a readable run record ({exc})")
        else:
            with AuditStore() as store:
                loaded = store.load_run(args.run)
            record, overrides, patient = loaded.record, loaded.overrides, loaded.patient
    except AuditStoreError as exc:
        return fail(str(exc))
    if args.out.suffix.lower() != ".pdf":
        return fail(f"--out {args.out}: the report is a PDF; name the file *.pdf", EXIT_USAGE)
    if args.out.exists() and not args.force:  # a signed-off report is not silently replaced
        return fail(f"--out {args.out}: the file exists (pass --force to replace it)", EXIT_USAGE)
    if args.out.is_dir():
        return fail(f"--out {args.out}: is a folder, not a file", EXIT_USAGE)
    try:
        path = build_report(record, args.out, overrides=overrides, page_size=args.page_size,
                            deidentify=args.deidentify, patient=patient)
    except Exception as exc:  # one plain line; build_report logs what a developer needs
        return fail(f"cannot write the report {args.out}: {failure_reason(exc)}")
    print(f"report for run {record.run_id} written to {path}" + deidentified_note(args.deidentify))
    return EXIT_OK
