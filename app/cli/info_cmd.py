"""``care-viewer info PATH [--json]``: what a study contains, one entry per series/volume.

JSON output is a list of objects, all with exactly the keys
``series_uid, modality, description, size, spacing, origin, direction, frames, min, max,
mean, window, errors, orientation_labels, spacing_source, overlays, modality_source,
modality_hint`` (size/spacing/origin
as [x, y, z], direction as 9 numbers, row-major, LPS; min/max/mean in modality units, as
stored, also for MONOCHROME1; window {center, width, name}; orientation_labels
{left, right, top, bottom} of the acquisition-plane view, null where the file does not
say (a radiograph without PatientOrientation, a picture); spacing_source
"PixelSpacing" | "ImagerPixelSpacing" | "UltrasoundRegion" | "none" (none: spacing is a
placeholder 1 and means pixels); overlays: how many DICOM overlay planes (60xx);
modality_source "header" | "detected from HU range" | "none": where the modality came from,
modality_hint "CT" when a file without a modality (NIfTI/NRRD/MHA) holds CT Hounsfield units
(modality then stays "OT" and the window is named "... (detected from HU range)"), else "").

Errors: ``errors`` is a list of ``{path, reason}``. A file whose header named a series
(e.g. one slice with corrupt pixel data) is listed under that series. Files that belong
to no series (not DICOM, unreadable NIfTI, ...) are attached to *every* object, so each
object stays self-contained and all objects keep the same shape. When nothing could be
read, stdout is ``[]`` and every error goes to stderr as ``path: reason``.

Exit codes: 0 when at least one series loaded, 2 when nothing could be read.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from app.audit.present.formatting import printable
from app.study.overlay_planes import overlay_count
from app.study.edge_labels import native_edge_labels

HELP = "List the series in a study (DICOM folder/DICOMDIR, NIfTI, NRRD, MHA, PNG/JPEG)."

KEYS = ("series_uid", "modality", "description", "size", "spacing", "origin", "direction",
        "frames", "min", "max", "mean", "window", "errors", "orientation_labels", "spacing_source", "overlays",
        "modality_source", "modality_hint")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="folder, file(s), DICOMDIR, NIfTI/NRRD/MHA, PNG/JPEG")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _round(values: Any, nd: int = 6) -> list[float]:
    return [round(float(v), nd) for v in values]


def _finite(value: float) -> float | None:
    """NaN voxels (float NIfTI/MHA) make min/max/mean NaN, which is not JSON: null instead."""
    return value if math.isfinite(value) else None


def describe(volume: Any, errors: list[dict[str, str]]) -> dict[str, Any]:
    vmin, vmax, vmean = volume.stats()
    return {
        "series_uid": volume.series_uid,
        "modality": volume.modality,
        "description": volume.description,
        "size": list(volume.size),
        "spacing": _round(volume.spacing),
        "origin": _round(volume.origin),
        "direction": _round(volume.direction.ravel()),
        "frames": int(volume.frames),
        "min": _finite(vmin),
        "max": _finite(vmax),
        "mean": _finite(round(vmean, 4)),
        "window": volume.window.to_dict(),
        "errors": errors,
        "orientation_labels": _labels(volume),
        "spacing_source": volume.spacing_source,
        "overlays": overlay_count(volume.dicom_overlays),
        "modality_source": volume.modality_source.value,
        "modality_hint": volume.modality_hint,
    }


def _labels(volume: Any) -> dict[str, str] | None:
    labels = native_edge_labels(volume)
    if labels is None:
        return None
    return {"left": labels.left, "right": labels.right, "top": labels.top, "bottom": labels.bottom}


def run(args: argparse.Namespace) -> int:
    from app.cli.main import EXIT_OK, EXIT_UNREADABLE
    from app.study.loader import load

    result = load(args.paths)
    uids = {v.series_uid for v in result.volumes if v.series_uid}
    loose = [{"path": e.path, "reason": e.reason} for e in result.errors if e.series_uid not in uids]
    objects = []
    for v in result.volumes:
        own = [{"path": e.path, "reason": e.reason} for e in result.errors if v.series_uid and e.series_uid == v.series_uid]
        objects.append(describe(v, own + loose))

    if args.json:
        print(printable(json.dumps(objects, indent=2, allow_nan=False)))
        if not objects:
            for e in result.errors:
                print(printable(f"{e.path}: {e.reason}"), file=sys.stderr)
    else:
        _print_table(objects, result.volumes)
        if result.errors:
            print(f"\n{len(result.errors)} file(s) could not be read:", file=sys.stderr if not objects else sys.stdout)
            for e in result.errors:
                print(printable(f"  {e.path}: {e.reason}"), file=sys.stderr if not objects else sys.stdout)
    return EXIT_OK if objects else EXIT_UNREADABLE


def _fmt(values: list[float], nd: int = 3) -> str:
    return "[" + ", ".join(f"{v:.{nd}f}".rstrip("0").rstrip(".") if "." in f"{v:.{nd}f}" else f"{v}" for v in values) + "]"


def _print_table(objects: list[dict[str, Any]], volumes: list[Any]) -> None:
    if not objects:
        print("No series could be read.")
        return
    for i, (o, v) in enumerate(zip(objects, volumes), 1):
        w = o["window"]
        rows = [
            ("series", o["series_uid"] or "-"),
            ("modality", o["modality"] + (f"  ({o['modality_hint']} {o['modality_source']})" if o["modality_hint"] else "")),
            ("description", o["description"] or "-"),
            ("size (x,y,z)", " × ".join(str(s) for s in o["size"])),
            ("spacing mm", _fmt(o["spacing"], 4)),
            ("origin mm (LPS)", _fmt(o["origin"], 3)),
            ("direction", _fmt(o["direction"], 4)),
            ("frames", str(o["frames"])),
            ("min / max / mean", " / ".join("n/a" if x is None else f"{x:g}" for x in (o["min"], o["max"], o["mean"]))),
            ("window", f"C {w['center']:g}  W {w['width']:g}  ({w['name']})"),
            ("spacing from", o["spacing_source"]),
            ("edge labels", " ".join(f"{k}={v}" for k, v in o["orientation_labels"].items()) if o["orientation_labels"] else "none (not in the file)"),
            ("overlays", str(o["overlays"])),
        ]
        if v.warnings:
            rows.append(("warnings", "; ".join(v.warnings)))
        print(f"Series {i}/{len(objects)}")
        for k, val in rows:
            print(f"  {k:<17} {printable(val)}")
        print()
