"""``care-viewer ask PATH --question Q``: one CARE question about one slice, fully recorded."""
from __future__ import annotations

import argparse
import math
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

HELP = "answer a question about one slice (or the whole study) with the CARE pipeline and write an auditable run record"

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_WEIGHTS_MISSING = 0, 1, 2, 3
EXIT_AUDIT = 5  # the audit trail cannot record the run (damaged, unwritable, full): nothing was run


def coord_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The CARE-Coord options given on the command line (None: the profile's)."""
    return {"uncertainty_threshold": args.uncertainty_threshold, "reground": args.reground,
            "may_revise": args.may_revise}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="DICOM folder/file, NIfTI, NRRD, MHA or 2D image")
    p.add_argument("--question", "-q", required=True, help="the question, in quotes")
    p.add_argument("--series", help="series instance UID (when PATH holds several series)")
    p.add_argument("--slice", type=int, dest="slice_index", help="slice index, 0-based (default: the middle slice)")
    p.add_argument("--mode", choices=("flow", "coord"), default="flow", help="CARE-Flow (default) or CARE-Coord")
    p.add_argument("--scope", choices=("slice", "study"), default="slice",
                   help="slice (default): about the slice given by --slice; study: about the whole series "
                   "(the entity is localised across the volume, a few evidence slices are chosen and answered, "
                   "and their answers aggregated; --slice and --box then say where to start)")
    p.add_argument("--profile", help="model profile from models/profiles.toml (default: the manifest's default)")
    p.add_argument("--tau", type=float, default=None, help="mask confidence threshold for every segmenter (default: each segmenter's profile tau)")
    p.add_argument("--window", help="display window for the model input: a CT preset (lung, mediastinum, "
                   "abdomen, bone, brain) or CENTER,WIDTH (default: the series' default window)")
    p.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                   help="a clinician box in the displayed slice's pixels, as the viewer shows it (x = column "
                   "to the right, y = row down, X1/Y1 exclusive; repeatable); segmented with the box route")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--max-new-tokens", type=int, help="generation budget per answer (default: the backend's)")
    p.add_argument("--out", type=Path, help="output folder (default: ./care-run-YYYYmmdd-HHMMSS); "
                   "refused when it exists and is not empty, unless --force")
    p.add_argument("--force", action="store_true", help="replace the contents of a non-empty --out folder")
    add_remote_arguments(p)


def add_remote_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``ask`` and ``eval``: remote consent and the coordinator's re-grounding."""
    p.add_argument("--yes-send-images", action="store_true",
                   help="consent to sending the slice images to the profile's remote server(s) (recorded per "
                        "endpoint; without it you are asked on a terminal, and refused otherwise)")
    p.add_argument("--uncertainty-threshold", type=float, metavar="NATS",
                   help="CARE-Coord with re-grounding: re-ground when the answer tokens' mean surprisal "
                        "(-mean log p) exceeds this (default 0.4, or the profile's)")
    p.add_argument("--reground", action="store_true", default=None,
                   help="CARE-Coord: turn on entropy-guided re-grounding (a heuristic after MedVR; not part of "
                        "CARE; off unless the profile turns it on)")
    p.add_argument("--may-revise", action=argparse.BooleanOptionalAction, default=None,
                   help="CARE-Coord: may the coordinator's review replace the experts' vote answer (default: the "
                        "profile's; yes for a remote coordinator, no for a local model)")


def remote_endpoints(profile: Any, mode: str) -> list[str]:
    """Canonical URLs of every remote server this run would contact: the expert stages', and
    in coord mode the coordinator's (even a text-only coordinator receives the question and the
    experts' reasoning, which is patient data leaving the machine). The GUI asks the same."""
    from app.pipeline.remote.endpoint import parse_endpoint

    roles = ("entity", "vqa", "coordinator") if mode == "coord" else ("entity", "vqa")
    urls = []
    for role in roles:
        spec = profile.get(role)
        if spec is not None and spec.backend == "remote":
            opts = spec.options
            urls.append(parse_endpoint(str(opts.get("endpoint") or opts.get("base_url") or "")).url)
    return list(dict.fromkeys(urls))


def ensure_remote_consent(profile: Any, mode: str, assume_yes: bool) -> str | None:
    """Consent before anything leaves the machine; None when every endpoint the run would
    contact is approved, else the one-line reason to refuse the run."""
    from app.pipeline.remote.consent import ConsentStore, ensure_consent_cli
    from app.pipeline.remote.errors import RemoteError

    store = ConsentStore()
    try:
        for url in remote_endpoints(profile, mode):
            if not ensure_consent_cli(store, url, assume_yes=assume_yes):
                return (f"profile {profile.name} sends patient data to {url}, and sending it was not "
                        "approved (answer the prompt on a terminal, or pass --yes-send-images)")
    except RemoteError as exc:
        return str(exc)
    return None


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def parse_window(text: str | None):
    from app.study.display import CT_PRESETS
    from app.study.volume import Window

    if not text:
        return None
    key = text.strip().lower()
    if key in CT_PRESETS:
        return CT_PRESETS[key]
    try:
        center, width = (float(v) for v in key.split(","))
    except ValueError:
        raise ValueError(f"--window {text!r}: expected a preset ({', '.join(CT_PRESETS)}) or CENTER,WIDTH") from None
    if not (math.isfinite(center) and math.isfinite(width)):
        raise ValueError(f"--window {text!r}: CENTER and WIDTH must be finite numbers")
    if width <= 0:
        raise ValueError(f"--window {text!r}: the width must be positive")
    return Window(center, width, f"C{center:g} W{width:g}")


def parse_box(text: str) -> tuple[int, int, int, int]:
    """Raises ValueError (a one-line usage message) for malformed or non-finite boxes."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--box {text!r}: expected X0,Y0,X1,Y1 in pixels") from None
    if len(values) != 4:
        raise ValueError(f"--box {text!r}: expected X0,Y0,X1,Y1 in pixels")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"--box {text!r}: coordinates must be finite numbers")
    x0, y0, x1, y1 = (int(round(v)) for v in values)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"--box {text!r}: X1/Y1 must be greater than X0/Y0")
    return x0, y0, x1, y1


def fit_box(box: tuple[int, int, int, int], text: str, width: int, height: int) -> tuple[tuple[int, int, int, int], str | None]:
    """(box clipped to the width x height slice, warning or None). Raises ValueError when the
    box lies entirely outside the slice: a box that only crosses the edge is clipped (with a
    warning), one that misses the image is a usage error, never a silent empty prompt."""
    x0, y0, x1, y1 = box
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ValueError(f"--box {text}: outside the {width}x{height} slice")
    clipped = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
    if clipped == box:
        return box, None
    return clipped, f"--box {text} crosses the edge of the {width}x{height} slice; clipped to {','.join(map(str, clipped))}"


def _fit_boxes(boxes: list, texts: list[str], volume: Any) -> list:
    """Every --box checked against the displayed slice's size (warnings for clipped ones on stderr)."""
    from app.study.display_frame import display_frame

    height, width = display_frame(volume).shape  # --box is in the display frame, maybe transposed
    fitted = []
    for box, text in zip(boxes, texts):
        box, note = fit_box(box, text, width, height)
        if note:
            print(f"warning: {note}", file=sys.stderr)
        fitted.append(box)
    return fitted


def load_volume(path: str, series: str | None) -> tuple[Any, str | None]:
    """(volume, None) or (None, one-line reason)."""
    from app.study.loader import load

    p = Path(path)
    if not p.exists():
        return None, f"{path}: no such file or folder"
    result = load([p])
    if not result.volumes:
        reason = "; ".join(str(e) for e in result.errors) or f"{path}: no readable image found"
        return None, reason
    if series:
        for v in result.volumes:
            if v.series_uid == series:
                _report_skipped([e for e in result.errors if e.series_uid in ("", series)], v)
                return v, None
        known = ", ".join(v.series_uid or "(no UID)" for v in result.volumes)
        return None, f"{path}: no series {series!r} (found: {known})"
    if len(result.volumes) > 1:
        print(f"note: {path} holds {len(result.volumes)} series; using {result.volumes[0].series_uid} "
              "(choose with --series)", file=sys.stderr)
    _report_skipped(result.errors, result.volumes[0])
    return result.volumes[0], None


def _report_skipped(errors: list, volume: Any) -> None:
    """Files left out and values assumed are said on stderr, one line each, as `info` lists them."""
    from app.audit.present.formatting import printable

    for e in errors:
        print(printable(f"note: skipped {e.path}: {e.reason}"), file=sys.stderr)
    for w in volume.warnings:
        print(printable(f"note: {volume.display_name}: {w}"), file=sys.stderr)


def format_summary(record: Any, out_dir: Path | None = None) -> str:
    """A few lines a radiologist can read in a terminal; the record holds everything."""
    from app.audit.present.terminal import summary_lines

    return "\n".join(summary_lines(record, out_dir))


def coordinator_lines(record: Any) -> list[str]:
    """The CARE-Coord timeline in a few lines (plan, rounds, re-grounding, reviews, decision)."""
    from app.audit.present.timeline import terminal_lines

    return terminal_lines(record)


def _progress(stage, message: str, fraction: float) -> None:
    print(f"[{fraction * 100:5.1f}%] {stage.value}: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from app.pipeline.run_io import write_run
    from app.pipeline.strategies import strategy_for
    from app.pipeline.types import PipelineError, WeightsMissingError
    from app.pipeline.vocab import RunStatus

    try:
        window = parse_window(args.window)
        boxes = [parse_box(b) for b in args.box]
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if args.tau is not None and not 0.0 <= args.tau <= 1.0:
        return _fail(f"--tau {args.tau}: must be between 0 and 1", EXIT_USAGE)
    if not args.question.strip():
        return _fail("--question is empty: type the question in quotes", EXIT_USAGE)
    try:
        profile = load_profile(args.profile)
    except (KeyError, OSError, ValueError) as exc:
        return _fail(str(exc).strip('"'), EXIT_USAGE)

    volume, reason = load_volume(args.path, args.series)
    if volume is None:
        return _fail(reason or args.path, EXIT_UNREADABLE)
    k = volume.num_slices // 2 if args.slice_index is None else args.slice_index
    if not 0 <= k < volume.num_slices:
        return _fail(f"{args.path}: slice {k} is out of range (0..{volume.num_slices - 1})", EXIT_UNREADABLE)
    if args.scope == "study" and volume.num_slices < 2:
        return _fail(f"{args.path}: --scope study needs a series of more than one slice (this one has "
                     f"{volume.num_slices}); ask about the slice instead", EXIT_USAGE)
    try:
        boxes = _fit_boxes(boxes, args.box, volume)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)

    refused = ensure_remote_consent(profile, args.mode, args.yes_send_images)
    if refused:
        return _fail(refused, EXIT_USAGE)

    out_dir = args.out or _default_out_dir()
    if not args.force and _non_empty(out_dir):
        return _fail(f"--out {out_dir}: the folder exists and is not empty (pass --force to replace it)", EXIT_USAGE)

    from app.audit.errors import AuditStoreError
    from app.audit.run_observer import AuditRunObserver
    from app.audit.store import AuditStore

    # The trail is opened, and the run's start row committed (observer.on_started), before any
    # model runs: a run that cannot be audited is refused, and a run killed later is listed.
    try:
        store = AuditStore()
    except AuditStoreError as exc:
        return _fail(f"{exc}; no run was started", EXIT_AUDIT)
    with store:
        observer = AuditRunObserver(store, volume.patient, None, _progress)
        try:
            pipeline = CarePipeline(profile, tau=args.tau, max_new_tokens=args.max_new_tokens, device=args.device)
            strategy = strategy_for(args.mode, pipeline, eager=True, **coord_overrides(args))
            if args.scope == "study":
                from app.pipeline.study_scope import study_strategy

                strategy = study_strategy(pipeline, strategy)
            pipeline.check_weights()
            from app.cli.interrupt import cancel_on_sigint

            with cancel_on_sigint() as interrupted:  # Ctrl-C: the run ends as cancelled, its record kept
                record = pipeline.run(volume, k, args.question, window=window, strategy=strategy,
                                      observer=observer, boxes=boxes, cancel=interrupted.is_set)
        except AuditStoreError as exc:
            return _fail(f"the audit trail cannot record the run start ({exc}); no model was run", EXIT_AUDIT)
        except WeightsMissingError as exc:
            if observer.record is not None:  # weights vanished mid-run: close the started run as failed
                _finish(store, observer.record, volume.patient)
            return _fail(str(exc), EXIT_WEIGHTS_MISSING)
        except PipelineError as exc:
            return _fail(str(exc), EXIT_USAGE)
        try:
            write_run(record, out_dir)
        except OSError as exc:
            _finish(store, record, volume.patient)  # the trail still gets the run
            return _fail(f"{out_dir}: cannot write the run record ({exc.strerror or exc}); "
                         "nothing partial was left there", EXIT_UNREADABLE)
        if (note := _finish(store, record, volume.patient)):
            return _fail(note, EXIT_AUDIT)
    print(format_summary(record, out_dir))
    return EXIT_OK if record.status == RunStatus.COMPLETED else EXIT_USAGE


def _finish(store: Any, record: Any, patient: Any) -> str | None:
    """Record the finished run; None, or the one-line reason it could not be (the run stays
    listed as interrupted, its start row having been committed)."""
    import sqlite3

    from app.audit.errors import AuditStoreError

    try:
        store.finish_run(record, patient=patient)
    except (AuditStoreError, OSError, ValueError, sqlite3.Error) as exc:
        return f"run {record.run_id} could not be finished in the audit trail ({exc}); it is listed as interrupted"
    return None


def _default_out_dir() -> Path:
    """./care-run-YYYYmmdd-HHMMSS, with -2, -3, ... when two runs start within one second."""
    base = Path.cwd() / datetime.now().strftime("care-run-%Y%m%d-%H%M%S")
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _non_empty(path: Path) -> bool:
    if not path.exists():
        return False
    if not path.is_dir():
        return True  # a file where the folder should go: replacing it needs --force too
    return any(path.iterdir())
