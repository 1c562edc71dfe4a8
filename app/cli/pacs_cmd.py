"""``care-viewer pacs echo|query|retrieve|store``: talk to a PACS over DICOMweb or DIMSE
(``store --deidentify`` sends de-identified copies, as ``care-viewer export --deidentify`` writes)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "query, retrieve from and store to a PACS (DICOMweb or DIMSE)"

# Shared codes (README): 0 ok, 1 usage or cancelled, 2 unreadable input, 6 the PACS node failed.
EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_PACS = 0, 1, 2, 6


def _node_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--dicomweb", metavar="URL", help="DICOMweb root, e.g. http://pacs:8042/dicom-web")
    g.add_argument("--dimse", metavar="AET@HOST:PORT", help="DIMSE node, e.g. ORTHANC@pacs:4242")
    g.add_argument("--node", metavar="NAME", help="a node configured in pacs.toml (see README: Connect to PACS)")
    p.add_argument("--calling-ae", metavar="AET", help="our AE title (default CAREVIEWER)")
    p.add_argument("--user", metavar="USER", help="DICOMweb basic-auth user; the password comes from "
                   "--password-env (default CARE_PACS_PASSWORD), else the OS keyring")
    p.add_argument("--password-env", metavar="VAR", default="CARE_PACS_PASSWORD",
                   help="environment variable holding the password (never pass it on the command line)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="pacs_action", metavar="ACTION", required=True)
    echo = sub.add_parser("echo", help="check a node (C-ECHO, or a DICOMweb QIDO-RS ping)")
    _node_arguments(echo)
    query = sub.add_parser("query", help="find studies")
    _node_arguments(query)
    query.add_argument("--patient-id", default="", metavar="ID", help="patient ID (wildcards * and ? allowed)")
    query.add_argument("--patient-name", default="", metavar="NAME", help="DICOM name, e.g. 'DOE^J*'")
    query.add_argument("--accession", default="", metavar="A", help="accession number")
    query.add_argument("--date", metavar="FROM-TO", help="study date range: 20200101-20201231, 2020-01-01-2020-12-31, "
                       "20200101- or -20201231; one date alone is that day")
    query.add_argument("--modality", default="", metavar="M", help="a modality in the study (CT, MR, ...)")
    query.add_argument("--series", action="store_true", help="also list each study's series")
    query.add_argument("--json", action="store_true", help="machine-readable output")
    ret = sub.add_parser("retrieve", help="retrieve a study (or one series) into a folder; resumable")
    _node_arguments(ret)
    ret.add_argument("--study", required=True, metavar="UID", help="StudyInstanceUID")
    ret.add_argument("--series", metavar="UID", help="only this SeriesInstanceUID")
    ret.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                     help="writes DIR/<StudyUID>/<SeriesUID>/<SOPUID>.dcm; instances already there are kept")
    ret.add_argument("--move-port", type=int, metavar="PORT",
                     help="DIMSE: retrieve by C-MOVE to our Storage SCP on PORT (the node must know our AE "
                          "title at this host and port); without it C-GET is used")
    store = sub.add_parser("store", help="send a run's DICOM SEG / SR / PDF (or DICOM files) to a node")
    store.add_argument("run", nargs="?", metavar="RUN",
                       help="a run id (or unique prefix) from `care-viewer history`, or a run folder / run.json")
    _node_arguments(store)
    store.add_argument("--seg", action="store_true", help="the DICOM SEG of the accepted masks")
    store.add_argument("--sr", action="store_true", help="the structured report")
    store.add_argument("--pdf", action="store_true", help="the evidence report as Encapsulated PDF")
    store.add_argument("--file", action="append", type=Path, default=[], metavar="FILE.dcm",
                       help="send this DICOM file as it is (repeatable; instead of, or besides, RUN)")
    store.add_argument("--deidentify", action="store_true",
                       help="send de-identified copies (DICOM PS3.15 Basic Profile: new UIDs through one map for "
                            "the whole call, so references stay consistent; no patient identifiers; of a --file only "
                            "the attributes needed to view the image are kept, no dates, names or free text); the "
                            "files and the run on disk are not changed")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _node(args: argparse.Namespace):
    from app.pacs.nodes import DEFAULT_CALLING_AE, PacsAuth, find_node, parse_node_arg

    move_port = getattr(args, "move_port", None)
    if args.node:
        node = find_node(args.node)
        changes = {k: v for k, v in (("calling_ae", args.calling_ae), ("move_port", move_port)) if v}
        if changes:
            from dataclasses import replace

            node = replace(node, **changes)
        return node
    auth = PacsAuth(username=args.user, password_env=args.password_env) if args.user else None
    return parse_node_arg(args.dicomweb, args.dimse, calling_ae=args.calling_ae or DEFAULT_CALLING_AE,
                          auth=auth, move_port=move_port)


def run(args: argparse.Namespace) -> int:
    from app.pacs.errors import PacsError

    try:
        node = _node(args)
        action = {"echo": _echo, "query": _query, "retrieve": _retrieve, "store": _store}[args.pacs_action]
        return action(args, node)
    except ValueError as exc:  # a malformed node, date or config file
        return _fail(str(exc), EXIT_USAGE)
    except PacsError as exc:
        return _fail(str(exc), EXIT_PACS)


def _echo(args: argparse.Namespace, node) -> int:
    from app.pacs.client import client_for

    result = client_for(node).echo()
    if not result.ok:
        return _fail(result.message, EXIT_PACS)
    print(result.message)
    return EXIT_OK


def _query(args: argparse.Namespace, node) -> int:
    from app.pacs.client import client_for
    from app.pacs.models import QueryFilter, parse_date_range

    lo, hi = parse_date_range(args.date) if args.date else (None, None)
    query = QueryFilter(patient_id=args.patient_id, patient_name=args.patient_name, accession=args.accession,
                        date_from=lo, date_to=hi, modality=args.modality)
    client = client_for(node)
    studies = sorted(client.find_studies(query), key=lambda s: (s.study_date, s.patient_id, s.study_uid))
    series = {s.study_uid: client.find_series(s.study_uid) for s in studies} if args.series else {}
    if args.json:
        rows = []
        for s in studies:
            row = s.as_json()
            if args.series:
                row["series"] = [x.as_json() for x in series[s.study_uid]]
            rows.append(row)
        print(json.dumps({"node": node.label, "protocol": node.protocol.value, "query": query.keys(),
                          "studies": rows}, indent=2))
        return EXIT_OK
    print(_table(studies, series))
    print(f"{len(studies)} stud{'y' if len(studies) == 1 else 'ies'} on {node.label}")
    return EXIT_OK


def _table(studies: list, series: dict) -> str:
    header = ("DATE", "PATIENT ID", "NAME", "MOD", "SERIES", "IMAGES", "ACCESSION", "DESCRIPTION", "STUDY UID")
    rows = [header]
    for s in studies:
        rows.append((s.study_date or "-", s.patient_id or "-", s.patient_name or "-", ",".join(s.modalities) or "-",
                     "-" if s.n_series is None else str(s.n_series), "-" if s.n_instances is None else str(s.n_instances),
                     s.accession or "-", s.description or "-", s.study_uid))
        for x in series.get(s.study_uid, []):
            rows.append(("", "", f"  series {x.number if x.number is not None else '-'}", x.modality or "-", "",
                         "-" if x.n_instances is None else str(x.n_instances), "", x.description or "-", x.series_uid))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _retrieve(args: argparse.Namespace, node) -> int:
    from app.cli.interrupt import cancel_on_sigint
    from app.pacs.client import client_for

    tty = sys.stderr.isatty()

    def progress(p) -> None:
        if tty:
            print(f"\r  {p.done}/{p.total} instances", end="", file=sys.stderr, flush=True)

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _fail(f"--out {args.out}: cannot create the folder ({exc.strerror or exc})", EXIT_UNREADABLE)
    with cancel_on_sigint() as cancelled:
        result = client_for(node).retrieve(args.study, args.series, out_dir=args.out, progress=progress,
                                           cancel=cancelled.is_set)
    if tty:
        print(file=sys.stderr)
    where = args.out / args.study
    kept = f"{len(result.written)} instance(s) written, {result.already_present} already there"
    if result.cancelled:
        print(f"cancelled: kept {result.kept} of {result.total} instance(s) in {where} ({kept}); "
              "run the same command again to fetch the rest", file=sys.stderr)
        return EXIT_USAGE
    if not result.complete:
        print(f"retrieved {result.kept} of {result.total} instance(s) into {where} ({kept}); what was "
              "retrieved is kept", file=sys.stderr)
        return _fail(result.error, EXIT_PACS)
    print(f"retrieved study {args.study}: {result.total} instance(s) in {where} ({kept})")
    return EXIT_OK


def _store(args: argparse.Namespace, node) -> int:
    import pydicom

    from app.pacs.client import client_for

    from app.dicom_export.deidentify import UidMap, deidentify_file_copy

    # One map per call: a file and the run's SEG that references it get the same new UIDs.
    uids = UidMap() if args.deidentify else None
    datasets, patients = [], set()
    for path in args.file:
        try:
            ds = pydicom.dcmread(path)  # in memory: with --deidentify only this copy changes
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            return _fail(f"{path}: not a readable DICOM file ({exc})", EXIT_UNREADABLE)
        if uids is not None:
            patients.add(str(ds.get("PatientID", "")))
            try:
                deidentify_file_copy(ds, uids)
            except ValueError as exc:
                return _fail(f"{path}: not sent de-identified: {exc}", EXIT_UNREADABLE)
        datasets.append(ds)
    if len(patients) > 1:  # one pseudonym per call would merge them into one patient on the node
        return _fail(f"--deidentify: the files belong to {len(patients)} patients; store each patient's files "
                     "in a call of its own", EXIT_USAGE)
    if args.run:
        from app.dicom_export import ExportError, ExportKind, build_run_objects

        wanted = {ExportKind.SEG: args.seg, ExportKind.SR: args.sr, ExportKind.PDF: args.pdf}
        kinds = frozenset(k for k, on in wanted.items() if on) or frozenset(ExportKind)
        try:
            bundle = build_run_objects(args.run, kinds=kinds, deidentify=args.deidentify, uids=uids)
        except ExportError as exc:
            return _fail(str(exc), EXIT_UNREADABLE)
        for note in bundle.warnings:
            print(f"note: {note}")
        datasets.extend(bundle.datasets)
    if not datasets:
        return _fail("nothing to store: give RUN and/or --file FILE.dcm", EXIT_USAGE)
    result = client_for(node).store(datasets)
    for uid, reason in result.failed:
        print(f"error: PACS node {node.label}: not stored {uid}: {reason}", file=sys.stderr)
    files = ("; each --file kept only the attributes needed to view it: no dates, names, IDs, free text, private "
             "tags or overlays, pixels unchanged" if args.file else "")
    deid = (f" (de-identified: PS3.15 Basic Profile, new UIDs, patient {uids.dummies['PatientID']}{files}; "
            "the files on disk are unchanged)" if uids is not None else "")
    print(f"stored {len(result.stored)} of {len(datasets)} object(s) on {node.label}{deid}")
    return EXIT_OK if not result.failed else EXIT_PACS
