"""``care-viewer eval FILE``: VQA accuracy per answer type on a benchmark's own file, or ``--seg`` Dice.

VQA: ``--format generic|vqa-rad|slake|omnimedvqa|vqa-med-2019`` reads the benchmark's own file
(app/evaluation/formats.py says which fields; ``--images DIR`` is where its images are, default
the file's folder); scoring is app/evaluation/scoring.py's (closed: exact after normalisation;
open: the recall rule; multiple choice by option; VQA-Med's alternatives), written into eval.json.
``--concurrency N`` answers N items at once through a department server; ``--out DIR`` keeps a
progress log so ``--resume`` continues an interrupted evaluation (app/evaluation/progress.py).

Segmentation datasets (``--seg``) are a JSON list of ``{"image": ..., "label": ...}`` in any
loadable format. The label is mapped onto the image grid through physical (LPS) coordinates
(nearest neighbour), so grids may differ; on the slice where the label is largest, its
bounding box prompts the profile's box segmenter (LiteMedSAM) and Dice is measured there.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.evaluation.formats import BenchmarkFormat
from app.evaluation.output import OutputError, write_summary
from app.evaluation.runner import first_volume as _first_volume, resolve_image  # noqa: F401 - re-exported
from app.evaluation.scoring import is_correct  # noqa: F401 - re-exported for scripts and tests

HELP = "evaluate VQA accuracy per answer type on a dataset JSON (or Dice with --seg)"

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_WEIGHTS_MISSING = 0, 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, nargs="?",
                   help="benchmark file (see --format), or image/label pairs JSON with --seg")
    p.add_argument("--table", type=Path, nargs="+", metavar="EVAL",
                   help="print the paper's table from earlier evaluations (their --out folders or eval.json files), "
                        "one block per benchmark; runs nothing")
    p.add_argument("--format", dest="fmt", default="generic", choices=[f.value for f in BenchmarkFormat],
                   help="the benchmark's own file format (default: generic, CARE Viewer's JSON list)")
    p.add_argument("--images", type=Path, help="the benchmark's image folder (default: the file's folder)")
    p.add_argument("--lang", default="en", help="SLAKE: q_lang to keep: en (default), zh or all")
    p.add_argument("--concurrency", type=int, default=1, metavar="N",
                   help="answer N items at once (a department server profile only)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted evaluation in --out")
    p.add_argument("--profile", help="model profile (default: the manifest's default)")
    p.add_argument("--mode", choices=("flow", "coord"), default="flow")
    p.add_argument("--tau", type=float, default=None, help="mask confidence threshold for every segmenter (default: each segmenter's profile tau)")
    p.add_argument("--limit", type=int, help="evaluate only the first N items")
    p.add_argument("--seg", action="store_true", help="segmentation Dice over image/label pairs (box route)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--max-new-tokens", type=int, help="generation budget per answer")
    p.add_argument("--out", type=Path, help="folder for eval.json (and one run record per VQA item)")
    from app.cli.ask_cmd import add_remote_arguments

    add_remote_arguments(p)


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------
def dice(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    denom = int(a.sum()) + int(b.sum())
    return 1.0 if denom == 0 else 2.0 * int((a & b).sum()) / denom


# --------------------------------------------------------------------------------------
# Dataset reading
# --------------------------------------------------------------------------------------
def read_items(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data = data.get("items") or data.get("data") or []
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ValueError("expected a JSON list of objects")
    return data


# --------------------------------------------------------------------------------------
# Label geometry
# --------------------------------------------------------------------------------------
def _to_sitk(volume):
    import numpy as np
    import SimpleITK as sitk

    arr = volume.array
    if arr.ndim == 4:  # RGB label images: any non-zero channel is foreground
        arr = arr.max(axis=-1)
    img = sitk.GetImageFromArray(np.ascontiguousarray(arr))
    img.SetSpacing([float(s) for s in volume.spacing])
    img.SetOrigin([float(o) for o in volume.origin])
    img.SetDirection([float(d) for d in np.asarray(volume.direction).ravel()])
    return img


def label_on_grid(label, ref):
    """The label volume resampled onto ``ref``'s voxel grid through LPS coordinates, (z, y, x) bool."""
    import numpy as np
    import SimpleITK as sitk

    same = (label.array.shape[:3] == ref.array.shape[:3]
            and np.allclose(label.spacing, ref.spacing, atol=1e-4)
            and np.allclose(label.origin, ref.origin, atol=1e-3)
            and np.allclose(label.direction, ref.direction, atol=1e-5))
    if same:
        arr = label.array if label.array.ndim == 3 else label.array.max(axis=-1)
        return arr > 0
    src = _to_sitk(label)
    ref_img = sitk.GetImageFromArray(np.zeros(ref.array.shape[:3], dtype=np.uint8))
    ref_img.SetSpacing([float(s) for s in ref.spacing])
    ref_img.SetOrigin([float(o) for o in ref.origin])
    ref_img.SetDirection([float(d) for d in np.asarray(ref.direction).ravel()])
    out = sitk.Resample(src, ref_img, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(out) > 0


# --------------------------------------------------------------------------------------
# Segmentation
# --------------------------------------------------------------------------------------
@dataclass
class SegResult:
    index: int
    image: str
    label: str
    slice_index: int = -1
    box: list[int] = field(default_factory=list)
    label_area_px: int = 0
    dice: float | None = None
    confidence: float | None = None
    accepted: bool | None = None
    error: str = ""


def run_seg(args: argparse.Namespace, items: list[dict[str, Any]]) -> int:
    import numpy as np

    from app.pipeline.engine import CarePipeline
    from app.pipeline.segmentation.confidence import mask_bbox
    from app.pipeline.segmentation.service import image_key
    from app.pipeline.profiles import load_profile
    from app.pipeline.types import PipelineError, SegPrompt, WeightsMissingError
    from app.study.display import slice_rgb
    from app.study.display_frame import display_frame

    profile = load_profile(args.profile)
    pipeline = CarePipeline(profile, tau=args.tau, device=args.device)
    base = args.dataset.resolve().parent
    results: list[SegResult] = []
    for i, item in enumerate(items):
        r = SegResult(i, str(item.get("image", "")), str(item.get("label", "")))
        results.append(r)
        try:
            if not r.image or not r.label:
                raise ValueError("item needs an image and a label")
            volume = _first_volume(resolve_image(base, r.image))
            label = label_on_grid(_first_volume(resolve_image(base, r.label)), volume)
            areas = label.reshape(label.shape[0], -1).sum(axis=1)
            if areas.max() == 0:
                raise ValueError(f"{r.label}: the label is empty on the image's grid")
            k = int(areas.argmax())
            frame = display_frame(volume)
            truth = np.ascontiguousarray(frame.from_array(label[k]))  # the display frame the model sees
            box = mask_bbox(truth)
            seg = pipeline.backend("box_segmenter")
            if seg is None:
                raise ValueError(f"profile {profile.name} has no box segmenter")
            image = slice_rgb(volume, k)
            key = image_key(frame.image(k), volume.window)  # slice_rgb's default window
            (m,) = pipeline.segmentation().segment(seg, image, key, [("label", SegPrompt(box=box))]).masks
        except WeightsMissingError as exc:
            return _fail(str(exc), EXIT_WEIGHTS_MISSING)
        except (ValueError, PipelineError) as exc:
            r.error = str(exc)
            print(f"item {i}: {exc}", file=sys.stderr)
            continue
        r.slice_index, r.box, r.label_area_px = k, list(box), int(truth.sum())
        r.dice = dice(m.mask, truth)
        r.confidence, r.accepted = m.confidence, m.accepted
        print(f"[{i + 1}/{len(items)}] {_case_name(r.image)}: slice {k}, Dice {r.dice:.4f}, C={m.confidence:.3f}",
              file=sys.stderr, flush=True)

    scored = [r.dice for r in results if r.dice is not None]
    mean = float(np.mean(scored)) if scored else None
    print(f"{'case':<32} {'slice':>5} {'label px':>9} {'Dice':>7} {'conf':>6}")
    for r in results:
        name = _case_name(r.image)
        if r.dice is None:
            print(f"{name:<32} error: {r.error}")
        else:
            print(f"{name:<32} {r.slice_index:>5} {r.label_area_px:>9} {r.dice:>7.4f} {r.confidence:>6.3f}")
    print(f"mean Dice over {len(scored)} case(s): " + (f"{mean:.4f}" if mean is not None else "n/a"))
    _write_summary(args, {
        "dataset": str(args.dataset), "profile": profile.name, "task": "segmentation",
        "mean_dice": mean, "items": [asdict(r) for r in results],
    })
    return EXIT_OK if scored else EXIT_UNREADABLE


def _case_name(image: str) -> str:
    p = Path(image)
    name = f"{p.parent.name}/{p.name}" if p.parent.name else p.name  # "dicom" alone says little
    return name[-32:]


def _write_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    path = write_summary(args.out, summary)
    if path is not None:
        print(f"results: {path}")


def _table(paths: list[Path]) -> int:
    from app.evaluation.results import combined_table

    summaries = []
    for p in paths:
        f = p / "eval.json" if p.is_dir() else p
        try:
            summary = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(summary, dict) or not isinstance(summary.get("accuracy"), dict):
                raise ValueError("no accuracy table in it")
        except OSError as exc:
            return _fail(f"{f}: cannot read ({exc.strerror or exc})", EXIT_UNREADABLE)
        except (ValueError, UnicodeDecodeError) as exc:
            return _fail(f"{f}: not an eval.json ({exc})", EXIT_UNREADABLE)
        summaries.append(summary)
    print(combined_table(summaries))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    from app.pipeline.profiles import load_profile

    if args.table:
        return _table(args.table)
    if args.dataset is None:
        return _fail("name the benchmark file to evaluate (or --table EVAL... to print earlier results)", EXIT_USAGE)

    if args.limit is not None and args.limit < 1:
        return _fail("--limit must be at least 1", EXIT_USAGE)
    if args.concurrency < 1:
        return _fail("--concurrency must be at least 1", EXIT_USAGE)
    if args.resume and not args.out:
        return _fail("--resume needs the --out folder of the evaluation to continue", EXIT_USAGE)
    try:
        load_profile(args.profile)
    except (KeyError, OSError, ValueError) as exc:
        return _fail(str(exc).strip('"'), EXIT_USAGE)
    try:
        if not args.seg:
            from app.cli.eval_vqa import run_vqa

            return run_vqa(args)
        try:
            items = read_items(args.dataset)
        except OSError as exc:
            return _fail(f"{args.dataset}: cannot read ({exc.strerror or exc})", EXIT_UNREADABLE)
        except ValueError as exc:
            return _fail(f"{args.dataset}: not a dataset JSON ({exc})", EXIT_UNREADABLE)
        items = items[: args.limit] if args.limit is not None else items
        if not items:
            return _fail(f"{args.dataset}: the dataset is empty", EXIT_UNREADABLE)
        return run_seg(args, items)
    except OutputError as exc:
        return _fail(str(exc), EXIT_UNREADABLE)
