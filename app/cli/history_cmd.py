"""``care-viewer history``: the runs recorded in the audit trail, newest first."""
from __future__ import annotations

import argparse
import json
import sys

HELP = "list the CARE runs recorded in the audit trail (newest first)"

EXIT_OK, EXIT_TAMPERED, EXIT_UNREADABLE = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", metavar="UID", help="only runs on this study instance UID")
    p.add_argument("--json", action="store_true", help="machine-readable output (one JSON array)")
    p.add_argument("--limit", type=int, metavar="N", help="show at most N runs")
    p.add_argument("--verify", action="store_true",
                   help="recompute every record, artifact and chain hash; exit 0 when intact, 1 naming each run "
                        "that fails")


def format_table(runs: list) -> str:
    from app.audit.present import elide, fmt_local_minute, tail
    from app.audit.present.formatting import printable

    header = ("RUN", "TIME", "STATUS", "STUDY", "SERIES", "SLICE", "QUESTION", "ANSWER", "PROFILE", "MODE", "OVR")
    rows = [header] + [
        (r.run_id[:8], fmt_local_minute(r.created), r.status, tail(r.study_uid) or "-", tail(r.series_uid) or "-",
         str(r.slice_index), elide(r.question, 38, trim=False), elide(r.final_answer, 28, trim=False) or "-",
         r.profile or "-",
         r.mode or "-", str(r.overrides))
        for r in runs
    ]
    # Stored questions/answers are user- and model-derived: no terminal escapes reach the screen.
    rows = [tuple(printable(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def verify(args: argparse.Namespace) -> int:
    """``--verify``: one line per problem (naming the run), then the verdict and the chain head."""
    from app.audit.store import AuditStore, AuditStoreError

    try:
        with AuditStore() as store:
            report = store.verify()
            path = store.path
    except AuditStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    for problem in report.problems:
        print(f"FAILED {problem.line()}")
    since = f", chained since {report.chain_started}" if report.chain_started else ""
    if report.ok:
        print(f"audit trail intact: {report.runs} run(s), {report.overrides} override(s){since}; "
              f"chain head {report.head} ({path})")
        return EXIT_OK
    failed = report.failed_runs()
    print(f"audit trail FAILED verification: {len(failed)} run(s) affected, {len(report.problems)} problem(s) "
          f"({path})", file=sys.stderr)
    return EXIT_TAMPERED


def run(args: argparse.Namespace) -> int:
    from app.audit.store import AuditStore, AuditStoreError

    if args.verify:
        return verify(args)
    try:
        with AuditStore() as store:
            runs = store.list_runs(args.study)
            path = store.path
    except AuditStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    if args.limit is not None:
        if args.limit < 1:
            print(f"care-viewer history: --limit must be at least 1 (got {args.limit})", file=sys.stderr)
            return 1
        runs = runs[: args.limit]
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=1, ensure_ascii=False))
        return EXIT_OK
    if not runs:
        where = f" for study {args.study}" if args.study else ""
        print(f"no runs recorded{where} (audit trail: {path})")
        return EXIT_OK
    print(format_table(runs))
    print(f"{len(runs)} run(s); full ids with --json; `care-viewer report RUN --out FILE.pdf` for a report")
    return EXIT_OK
