"""``care-viewer eval DATASET.json``: VQA accuracy per answer type, or ``--seg`` Dice.

VQA datasets use the VQA-RAD / SLAKE layout: a JSON list of items
``{"image": ..., "question": ..., "answer": ..., "answer_type": "CLOSED" | "OPEN"}``
(``image_name``/``img_name`` are accepted for ``image``); image paths are relative to the
JSON file (SLAKE's ``imgs/`` folder is tried too). Scoring after ``normalize_answer`` with the
item's question (present/absent/none count as yes/no only for a yes/no question): CLOSED is
exact match; OPEN is exact match or every ground-truth word present in the
prediction (the usual VQA-RAD open-ended recall criterion).

Segmentation datasets (``--seg``) are a JSON list of ``{"image": ..., "label": ...}`` in any
loadable format. The label is mapped onto the image grid through physical (LPS) coordinates
(nearest neighbour), so grids may differ; on the slice where the label is largest, its
bounding box prompts the profile's box segmenter (LiteMedSAM) and Dice is measured there.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HELP = "evaluate VQA accuracy per answer type on a dataset JSON (or Dice with --seg)"

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_WEIGHTS_MISSING = 0, 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", type=Path, help="dataset JSON (VQA items, or image/label pairs with --seg)")
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
def is_correct(prediction: str, truth: str, answer_type: str, normalize) -> bool:
    p, t = normalize(prediction or ""), normalize(str(truth))
    if not p:
        return False
    if p == t:
        return True
    if answer_type.upper() == "CLOSED":
        return False
    return bool(t) and set(t.split()) <= set(p.split())


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


def resolve_image(base: Path, name: str) -> Path:
    p = Path(name)
    if p.is_absolute():
        return p
    for candidate in (base / p, base / "imgs" / p, base / "images" / p):
        if candidate.exists():
            return candidate
    return base / p


def _first_volume(path: Path):
    from app.study.loader import load

    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    result = load([path])
    if not result.volumes:
        raise ValueError("; ".join(str(e) for e in result.errors) or f"{path}: no readable image")
    return result.volumes[0]


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
# VQA
# --------------------------------------------------------------------------------------
@dataclass
class VQAResult:
    index: int
    image: str
    question: str
    answer: str
    answer_type: str
    prediction: str = ""
    correct: bool = False
    status: str = ""
    run_id: str = ""
    seconds: float = 0.0
    error: str = ""
    # CARE-Coord: the experts' vote answer and what the coordinator did to it.
    vote_prediction: str = ""
    vote_correct: bool | None = None
    coord_change: str = ""  # "unchanged" | "correction" | "erroneous" | "neutral"
    coord_fallback: bool = False
    coord_proposed: str = ""  # the coordinator's different answer, not applied (may_revise off)


@dataclass
class AccuracyRow:
    answer_type: str
    n: int = 0
    correct: int = 0
    errors: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


def accuracy_table(results: list[VQAResult]) -> list[AccuracyRow]:
    rows: dict[str, AccuracyRow] = {}
    for r in results:
        for key in (r.answer_type, "OVERALL"):
            row = rows.setdefault(key, AccuracyRow(key))
            row.n += 1
            row.correct += int(r.correct)
            row.errors += int(bool(r.error))
    order = sorted((k for k in rows if k != "OVERALL"))
    return [rows[k] for k in order] + ([rows["OVERALL"]] if "OVERALL" in rows else [])


def format_table(rows: list[AccuracyRow], title: str) -> str:
    lines = [title, f"{'answer type':<12} {'n':>5} {'correct':>8} {'accuracy':>9}", "-" * 37]
    for r in rows:
        if r.answer_type == "OVERALL":
            lines.append("-" * 37)
        lines.append(f"{r.answer_type:<12} {r.n:>5} {r.correct:>8} {100 * r.accuracy:>8.2f}%")
    return "\n".join(lines)


def run_vqa(args: argparse.Namespace, items: list[dict[str, Any]]) -> int:
    from app.pipeline.engine import CarePipeline
    from app.pipeline.parsing import normalize_answer
    from app.pipeline.profiles import load_profile
    from app.pipeline.run_io import write_run
    from app.pipeline.types import PipelineError, WeightsMissingError

    from app.cli.ask_cmd import coord_overrides, ensure_remote_consent
    from app.pipeline.coordinator import ChangeStats, classify_change
    from app.pipeline.strategies import strategy_for

    profile = load_profile(args.profile)
    refused = ensure_remote_consent(profile, args.mode, args.yes_send_images)
    if refused:
        return _fail(refused, EXIT_USAGE)
    pipeline = CarePipeline(profile, tau=args.tau, max_new_tokens=args.max_new_tokens, device=args.device)
    changes = ChangeStats()
    try:
        strategy = strategy_for(args.mode, pipeline, eager=True, **coord_overrides(args))
        pipeline.check_weights()
    except WeightsMissingError as exc:
        return _fail(str(exc), EXIT_WEIGHTS_MISSING)
    except PipelineError as exc:
        return _fail(str(exc), EXIT_USAGE)
    base = args.dataset.resolve().parent
    results: list[VQAResult] = []
    for i, item in enumerate(items):
        name = str(item.get("image") or item.get("image_name") or item.get("img_name") or "")
        r = VQAResult(i, name, str(item.get("question", "")), str(item.get("answer", "")),
                      str(item.get("answer_type", "OPEN")).upper())
        results.append(r)
        t0 = time.perf_counter()
        try:
            if not name or not r.question:
                raise ValueError("item needs an image and a question")
            volume = _first_volume(resolve_image(base, name))
            record = pipeline.run(volume, volume.num_slices // 2, r.question, strategy=strategy)
        except WeightsMissingError as exc:
            return _fail(str(exc), EXIT_WEIGHTS_MISSING)
        except (ValueError, PipelineError) as exc:
            r.error, r.status = str(exc), "error"
            print(f"item {i}: {exc}", file=sys.stderr)
            continue
        finally:
            r.seconds = time.perf_counter() - t0
        r.prediction, r.status, r.run_id = record.final_answer, record.status, record.run_id
        norm = functools.partial(normalize_answer, question=r.question)  # yes/no mapping only for yes/no questions
        r.correct = is_correct(r.prediction, r.answer, r.answer_type, norm)
        decision = record.coordinator_decision
        if decision is not None:
            def scorer(text: str, r: VQAResult = r, norm=norm) -> bool:
                return is_correct(text, r.answer, r.answer_type, norm)

            r.vote_prediction, r.vote_correct = decision.vote_answer, scorer(decision.vote_answer)
            r.coord_fallback = decision.source != "review"
            r.coord_change = classify_change(decision.vote_answer, decision.final_answer, scorer, norm)
            r.coord_proposed = decision.proposed_answer
            changes.add(r.coord_change, fallback=r.coord_fallback, withheld=bool(decision.proposed_answer))
        if record.errors:
            r.error = "; ".join(record.errors)
        if args.out:
            folder = args.out / "runs" / f"{i:05d}"
            try:
                write_run(record, folder)
            except OSError as exc:
                raise OutputError(folder, exc) from exc
        print(f"[{i + 1}/{len(items)}] {r.answer_type:<6} {'ok ' if r.correct else 'err'}  "
              f"pred={r.prediction!r} truth={r.answer!r}", file=sys.stderr, flush=True)

    rows = accuracy_table(results)
    print(format_table(rows, f"{args.dataset.name}: CARE-{args.mode.capitalize()} with profile {profile.name}"))
    if args.mode == "coord":
        print(changes.format())
    summary = {
        "dataset": str(args.dataset),
        "profile": profile.name,
        "mode": args.mode,
        "tau": args.tau,
        "accuracy": {r.answer_type: {"n": r.n, "correct": r.correct, "accuracy": r.accuracy, "errors": r.errors}
                     for r in rows},
        "items": [asdict(r) for r in results],
    }
    if args.mode == "coord":
        summary["coordinator_changes"] = changes.to_dict()
    _write_summary(args, summary)
    return EXIT_OK


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


class OutputError(Exception):
    """An --out file could not be written (disk full, unwritable); nothing partial was left."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"{path}: cannot write ({exc.strerror or exc}); no partial file was left")


def _write_summary(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """eval.json, all or nothing (temp file, fsync, rename).

    Raises:
        OutputError: it could not be written.
    """
    from app.pipeline.run_io import write_bytes_atomic

    if not args.out:
        return
    path = args.out / "eval.json"
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, json.dumps(summary, indent=1).encode("utf-8"))
    except OSError as exc:
        raise OutputError(path, exc) from exc
    print(f"results: {path}")


def run(args: argparse.Namespace) -> int:
    from app.pipeline.profiles import load_profile

    try:
        items = read_items(args.dataset)
    except OSError as exc:
        return _fail(f"{args.dataset}: cannot read ({exc.strerror or exc})", EXIT_UNREADABLE)
    except ValueError as exc:
        return _fail(f"{args.dataset}: not a dataset JSON ({exc})", EXIT_UNREADABLE)
    if args.limit is not None:
        if args.limit < 1:
            return _fail("--limit must be at least 1", EXIT_USAGE)
        items = items[: args.limit]
    if not items:
        return _fail(f"{args.dataset}: the dataset is empty", EXIT_UNREADABLE)
    try:
        load_profile(args.profile)
    except (KeyError, OSError, ValueError) as exc:
        return _fail(str(exc).strip('"'), EXIT_USAGE)
    try:
        return run_seg(args, items) if args.seg else run_vqa(args, items)
    except OutputError as exc:
        return _fail(str(exc), EXIT_UNREADABLE)
