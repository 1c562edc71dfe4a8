"""``care-viewer report RUN --out FILE.pdf``: the evidence report of one run as a PDF."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write the evidence report (PDF) of a run from the audit trail or a run folder"

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN",
                   help="a run id (or a unique prefix) from `care-viewer history`, or a run folder / run.json "
                        "written by `care-viewer ask --out DIR`")
    p.add_argument("--out", "-o", type=Path, required=True, metavar="FILE.pdf",
                   help="the PDF to write (refused when it exists, unless --force)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--deidentify", action="store_true",
                   help="leave out the patient's name, ID, birth date, accession, institution, UIDs and file paths")
    p.add_argument("--page-size", choices=("A4", "Letter"), default="A4", type=_page_size,
                   help="paper size (default A4)")


def _page_size(text: str) -> str:
    """Case-insensitive: a4 / A4 / letter / LETTER."""
    return {"a4": "A4", "letter": "Letter"}.get(text.strip().lower(), text)


def _fail(message: str, code: int = EXIT_UNREADABLE) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


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
                return _fail(f"{target}: not a readable run record ({exc})")
        else:
            with AuditStore() as store:
                loaded = store.load_run(args.run)
            record, overrides, patient = loaded.record, loaded.overrides, loaded.patient
    except AuditStoreError as exc:
        return _fail(str(exc))
    if args.out.suffix.lower() != ".pdf":
        return _fail(f"--out {args.out}: the report is a PDF; name the file *.pdf", EXIT_USAGE)
    if args.out.exists() and not args.force:  # a signed-off report is not silently replaced
        return _fail(f"--out {args.out}: the file exists (pass --force to replace it)", EXIT_USAGE)
    if args.out.is_dir():
        return _fail(f"--out {args.out}: is a folder, not a file", EXIT_USAGE)
    try:
        path = build_report(record, args.out, overrides=overrides, page_size=args.page_size,
                            deidentify=args.deidentify, patient=patient)
    except Exception as exc:  # one plain line; build_report logs what a developer needs
        return _fail(f"cannot write the report {args.out}: {failure_reason(exc)}")
    print(f"report for run {record.run_id} written to {path}" + (" (de-identified)" if args.deidentify else ""))
    return EXIT_OK
