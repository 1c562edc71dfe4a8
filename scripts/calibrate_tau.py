"""Calibrate the mask-confidence threshold tau for LiteMedSAM (docs/calibration.md).

Runs the real LiteMedSAM on
  * every labelled slice of the shared chest CT (lung tumour) and brain MR (lesion), with the
    label's box and jittered copies of it (small and large jitter, fixed seed), and
  * synthetic disks (r = 2..64 px) at several edge sharpnesses and contrasts in noise,
and records per mask: Dice with the truth, C_roi (entropy over bbox + 10 %), C_paper (entropy
over the whole map) and the IoU head's score. For each score it reports the lowest tau whose
accepted masks have precision >= 90 % for "Dice >= 0.7" (the rule in docs/calibration.md).

    python scripts/calibrate_tau.py [--data /work/shared/data] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOOD_DICE = 0.70
PRECISION = 0.90
SCORES = ("c_roi", "c_paper", "iou_head")
RADII = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
EDGE_SIGMAS = (0.0, 1.5, 4.0)  # Gaussian blur of the disk edge, px
CONTRASTS = (80,)  # disk minus background, grey levels (uint8 image)
JITTERS = (0.0, 0.1, 0.1, 0.3, 0.3)  # box jitter as a fraction of its size, per side


@dataclass
class Sample:
    source: str  # "ct" | "mr" | "disk"
    case: str
    size_px: int  # lesion area (px)
    jitter: float
    dice: float
    c_roi: float
    c_paper: float
    iou_head: float


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 2.0 * float((a & b).sum()) / s if s else 1.0


def jitter_box(box, jitter: float, shape, rng) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d = rng.uniform(-jitter, jitter, 4) * np.array([w, h, w, h])
    b = np.round(np.array(box, float) + d).astype(int)
    H, W = shape
    x0, x1 = sorted((int(np.clip(b[0], 0, W - 1)), int(np.clip(b[2], 1, W))))
    y0, y1 = sorted((int(np.clip(b[1], 0, H - 1)), int(np.clip(b[3], 1, H))))
    return (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


def judge(seg, image: np.ndarray, key: str, truth: np.ndarray, boxes, meta: dict, out: list[Sample]) -> None:
    from app.pipeline.segmentation.confidence import score_mask
    from app.pipeline.types import SegPrompt

    seg.set_image(image, key)
    probs, ious = seg.predict_scored([SegPrompt(box=b) for b in boxes])
    for (b, j), prob, iou in zip(zip(boxes, meta["jitters"]), probs, ious):
        r = score_mask(prob, entity="x", backend="litemedsam", prompt_type="box", box=b)
        out.append(Sample(meta["source"], meta["case"], int(truth.sum()), j, dice(r.mask, truth),
                          r.confidence_roi, r.confidence_paper, float(iou)))
    print(f"{meta['case']}: area {int(truth.sum())} px, Dice " + " ".join(f"{s.dice:.2f}" for s in out[-len(boxes):]),
          flush=True)


def real_cases(seg, data: Path, rng, out: list[Sample]) -> None:
    from app.cli.eval_cmd import label_on_grid
    from app.pipeline.segmentation.confidence import mask_bbox
    from app.pipeline.segmentation.service import image_key
    from app.study.display import slice_rgb
    from app.study.display_frame import display_frame
    from app.study.loader import load

    for source, folder, label_name in (("ct", "ct-chest-lung1", "lung1_label.nrrd"),
                                       ("mr", "mr-brain-brain1", "brain1_label.nrrd")):
        volume = load([data / folder / "dicom"]).volumes[0]
        label = label_on_grid(load([data / folder / label_name]).volumes[0], volume)
        frame = display_frame(volume)
        for k in np.flatnonzero(label.reshape(label.shape[0], -1).sum(axis=1) > 0):
            truth = np.ascontiguousarray(frame.from_array(label[k]))
            box = mask_bbox(truth)
            boxes = [jitter_box(box, j, truth.shape, rng) if j else box for j in JITTERS]
            image = slice_rgb(volume, int(k))
            judge(seg, image, image_key(frame.image(int(k)), volume.window), truth, boxes,
                  {"source": source, "case": f"{folder} slice {k}", "jitters": JITTERS}, out)


def disk_image(r: int, sigma: float, contrast: int, rng, size: int = 256):
    import cv2

    yy, xx = np.mgrid[:size, :size]
    c = size // 2 + 0.5 * (r % 2)
    truth = (xx - c) ** 2 + (yy - c) ** 2 <= r * r
    img = np.where(truth, 60.0 + contrast, 60.0)
    if sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2), truth


def synthetic_cases(seg, rng, out: list[Sample]) -> None:
    from app.pipeline.segmentation.confidence import mask_bbox

    for r in RADII:
        for sigma in EDGE_SIGMAS:
            for contrast in CONTRASTS:
                image, truth = disk_image(r, sigma, contrast, rng)
                box = mask_bbox(truth)
                boxes = [jitter_box(box, j, truth.shape, rng) if j else box for j in JITTERS]
                judge(seg, image, f"disk-{r}-{sigma}-{contrast}", truth, boxes,
                      {"source": "disk", "case": f"r={r} sigma={sigma} contrast={contrast}", "jitters": JITTERS},
                      out)


def choose_tau(samples: list[Sample], score: str) -> dict:
    """Lowest tau (0.01 steps) whose accepted masks are >= 90 % good, with its recall."""
    vals = np.array([getattr(s, score) for s in samples])
    good = np.array([s.dice >= GOOD_DICE for s in samples])
    for tau in np.round(np.arange(0.0, 1.001, 0.01), 2):
        acc = vals >= tau
        if acc.sum() == 0:
            break
        precision = float(good[acc].mean())
        if precision >= PRECISION:
            return {"tau": float(tau), "precision": precision, "recall": float((acc & good).sum() / max(good.sum(), 1)),
                    "accepted": int(acc.sum()), "n": len(samples), "good": int(good.sum())}
    return {"tau": None, "precision": None, "recall": 0.0, "accepted": 0, "n": len(samples), "good": int(good.sum())}


def size_table(samples: list[Sample]) -> list[dict]:
    """Median scores of well-segmented masks (Dice >= 0.7) by lesion size."""
    bins = ((0, 50), (50, 200), (200, 1000), (1000, 5000), (5000, 10 ** 9))
    rows = []
    for lo, hi in bins:
        sel = [s for s in samples if lo <= s.size_px < hi and s.dice >= GOOD_DICE]
        if sel:
            rows.append({"area_px": f"{lo}-{hi if hi < 10 ** 9 else 'inf'}", "n": len(sel),
                         **{k: float(np.median([getattr(s, k) for s in sel])) for k in SCORES},
                         **{f"{k}_min": float(min(getattr(s, k) for s in sel)) for k in SCORES}})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("CARE_SHARED_DATA", "/work/shared/data")))
    ap.add_argument("--json", type=Path, help="write every sample and the chosen taus here")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    from app.pipeline.segmentation.litemedsam import LiteMedSAMSegmenter

    rng = np.random.default_rng(args.seed)
    seg = LiteMedSAMSegmenter()
    samples: list[Sample] = []
    real_cases(seg, args.data, rng, samples)
    synthetic_cases(seg, rng, samples)
    groups = {"real (CT+MR)": [s for s in samples if s.source != "disk"],
              "synthetic disks": [s for s in samples if s.source == "disk"], "all": samples}
    result = {"rule": f"lowest tau with precision(Dice >= {GOOD_DICE}) >= {PRECISION:.0%} among accepted",
              "device": seg.info.device,
              "choice": {g: {k: choose_tau(ss, k) for k in SCORES} for g, ss in groups.items()},
              "by_size": {g: size_table(ss) for g, ss in groups.items()}}
    for g, by in result["choice"].items():
        print(f"== {g}")
        for k, c in by.items():
            print(f"  {k:<9} tau={c['tau']}  precision={c['precision']}  recall={c['recall']:.2f}  "
                  f"accepted={c['accepted']}/{c['n']} (good {c['good']})")
        for row in result["by_size"][g]:
            print("   ", row)
    if args.json:
        result["samples"] = [asdict(s) for s in samples]
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
