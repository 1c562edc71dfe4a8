"""``care-viewer eval``'s VQA half: a benchmark's own file through CARE-Flow or CARE-Coord.

Prints the paper's table (accuracy per answer type, CARE-Flow beside CARE-Coord in coord mode,
the coordinator's change statistics) and writes ``--out/eval.json`` plus one run record per item
(``runs/NNNNN``). With ``--out`` every finished item is logged first (progress.jsonl), so Ctrl-C,
a crash or a server outage loses at most the items in flight and ``--resume`` continues.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.evaluation.formats import BenchmarkFormat, EvalItem, FormatError, read_benchmark
from app.evaluation.output import OutputError, write_summary
from app.evaluation.progress import ProgressError, ProgressLog, fingerprint
from app.evaluation.results import VQAResult, accuracy_dict, accuracy_table, format_table
from app.evaluation.runner import Answered, answer_item, evaluate, local_generators
from app.evaluation.scoring import RULES

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_WEIGHTS_MISSING = 0, 1, 2, 3


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _fresh_folder(base: Path) -> Path:
    """``base``, or ``base.1``, ``base.2``… when a folder is already there (a run written just before
    a crash, never logged): an earlier run record is never written over."""
    folder, n = base, 0
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}.{n}")
    return folder


def run_vqa(args: argparse.Namespace) -> int:
    from app.cli.ask_cmd import coord_overrides, ensure_remote_consent
    from app.pipeline.coordinator import ChangeStats
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from app.pipeline.run_io import write_run
    from app.pipeline.strategies import strategy_for
    from app.pipeline.types import PipelineError, WeightsMissingError

    fmt = BenchmarkFormat(args.fmt)
    try:
        items = read_benchmark(args.dataset, fmt, lang=args.lang)
    except OSError as exc:
        return _fail(f"{args.dataset}: cannot read ({exc.strerror or exc})", EXIT_UNREADABLE)
    except FormatError as exc:
        return _fail(f"{exc} (read as --format {fmt.value})", EXIT_UNREADABLE)
    items = items[: args.limit] if args.limit is not None else items
    profile = load_profile(args.profile)
    local = local_generators(profile, args.mode)
    if args.concurrency > 1 and local:
        return _fail(f"--concurrency {args.concurrency} needs a department server: profile {profile.name} runs "
                     f"{', '.join(local)} on this machine, one item at a time", EXIT_USAGE)
    images = (args.images or args.dataset.resolve().parent).resolve()
    if not images.is_dir():
        return _fail(f"{images}: the image folder does not exist (--images)", EXIT_UNREADABLE)
    settings = {"format": fmt.value, "lang": args.lang, "profile": profile.name, "mode": args.mode, "tau": args.tau,
                "limit": args.limit, "max_new_tokens": args.max_new_tokens, **coord_overrides(args)}
    log: ProgressLog | None = None
    if args.out:
        header = {"dataset": str(args.dataset.resolve()), "fingerprint": fingerprint(args.dataset, settings),
                  "settings": settings, "items": len(items)}
        try:
            log = ProgressLog.open(args.out, header, resume=args.resume)
        except ProgressError as exc:
            return _fail(str(exc), EXIT_USAGE)
    refused = ensure_remote_consent(profile, args.mode, args.yes_send_images)
    if refused:
        return _fail(refused, EXIT_USAGE)
    pipeline = CarePipeline(profile, tau=args.tau, max_new_tokens=args.max_new_tokens, device=args.device)
    try:
        strategy = strategy_for(args.mode, pipeline, eager=True, **coord_overrides(args))
        pipeline.check_weights()
    except WeightsMissingError as exc:
        return _fail(str(exc), EXIT_WEIGHTS_MISSING)
    except PipelineError as exc:
        return _fail(str(exc), EXIT_USAGE)

    results: dict[int, VQAResult] = {}
    todo: list[EvalItem] = []
    for item in items:
        if log is not None and log.finished(item.key):
            results[item.index] = VQAResult.from_dict(log.done[item.key])
        else:
            todo.append(item)
    if log is not None and results:
        print(f"resuming: {len(results)} of {len(items)} item(s) already done", file=sys.stderr)

    def answered(item: EvalItem, done: Answered) -> None:
        r = done.result
        if done.record is not None and args.out:
            folder = _fresh_folder(args.out / "runs" / f"{item.index:05d}")
            try:
                write_run(done.record, folder)
            except OSError as exc:
                raise OutputError(folder, exc) from exc
        if log is not None:
            log.append(item.key, asdict(r))  # after the run folder: a logged run always exists
        results[item.index] = r
        if r.error and done.record is None:
            print(f"item {item.index} ({item.key}): {r.error}", file=sys.stderr)
        print(f"[{len(results)}/{len(items)}] {r.answer_type:<6} {'ok ' if r.correct else 'err'}  "
              f"pred={r.prediction!r} truth={r.answer!r}", file=sys.stderr, flush=True)

    def answer(item: EvalItem, cancel) -> Answered:
        return answer_item(pipeline, strategy, item, images, cancel)

    try:
        evaluate(todo, answer, answered, concurrency=args.concurrency)
    except WeightsMissingError as exc:
        return _fail(str(exc), EXIT_WEIGHTS_MISSING)
    except ProgressError as exc:
        return _fail(str(exc), EXIT_UNREADABLE)
    except KeyboardInterrupt:
        where = f"; continue with --resume --out {args.out}" if args.out else ""
        print(f"interrupted: {len(results)} of {len(items)} item(s) done{where}", file=sys.stderr)
        return 130

    ordered = [results[i] for i in sorted(results)]
    coord = args.mode == "coord"
    rows = accuracy_table(ordered)
    title = f"{fmt.title} ({args.dataset.name}): CARE-{args.mode.capitalize()}, profile {profile.name}"
    print(format_table(rows, title, coord=coord))
    changes = ChangeStats()
    if coord:
        for r in ordered:
            if r.coord_change:
                changes.add(r.coord_change, fallback=r.coord_fallback, withheld=bool(r.coord_proposed))
        print(changes.format())
    summary: dict[str, Any] = {
        "dataset": str(args.dataset), "format": fmt.value, "benchmark": fmt.title, "profile": profile.name,
        "mode": args.mode, "tau": args.tau, "lang": args.lang if fmt is BenchmarkFormat.SLAKE else None,
        "concurrency": args.concurrency, "scoring": RULES,
        "accuracy": accuracy_dict(rows, coord=coord), "items": [asdict(r) for r in ordered],
    }
    if coord:
        summary["coordinator_changes"] = changes.to_dict()
    path = write_summary(args.out, summary)
    if path is not None:
        print(f"results: {path}")
    return EXIT_OK
