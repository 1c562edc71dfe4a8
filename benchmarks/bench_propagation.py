"""3-D propagation of one box (app.pipeline.segmentation.propagate): cost per slice and accuracy.

    .venv/bin/python benchmarks/bench_propagation.py [--repeats 3] [--max-slices 64] [--device cpu|cuda]
    .venv/bin/python benchmarks/bench_propagation.py --accuracy     # + Dice / volume / leak on CT and MR

Cost: seconds per propagated slice of the shared CT tumour (fresh embeddings: the segmenter's
cache is emptied first), printed as a ratio to a single-slice LiteMedSAM call (embed + one
box) measured in the same run; a propagated slice should cost about one such call (one
embedding per slice, the refinement prompt reuses it).

Accuracy (``--accuracy``): the care rules and the issue's naive rule (box from the previous
mask; stop when the area drops below 1/4 or grows past 1.1x) on the CT tumour and the brain MR
lesion, seeded with the label's bounding box on its largest slice; 3-D Dice, volume error and
the slices the mask reaches past the label's ends. Labels reach the series' grid through LPS
coordinates (eval's ``label_on_grid``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data"))
CASES = {
    "CT tumour": ("ct-chest-lung1/dicom", "ct-chest-lung1/lung1_label.nrrd"),
    "MR lesion": ("mr-brain-brain1/dicom", "mr-brain-brain1/brain1_label.nrrd"),
}


def load_case(name: str):
    """(volume, label on its grid [z, y, x], seed slice, seed box in the display frame)."""
    from app.cli.eval_cmd import label_on_grid
    from app.pipeline.segmentation.confidence import mask_bbox
    from app.study.display_frame import display_frame
    from app.study.loader import load

    series, label = CASES[name]
    volume = load([DATA / series]).volumes[0]
    truth = label_on_grid(load([DATA / label]).volumes[0], volume)
    k = int(truth.reshape(truth.shape[0], -1).sum(axis=1).argmax())
    box = tuple(int(v) for v in display_frame(volume).box_from_array(mask_bbox(truth[k])))
    return volume, truth, k, box


def scores(lesion, truth) -> dict:
    import numpy as np

    m = lesion.mask
    zs = np.flatnonzero(truth.reshape(truth.shape[0], -1).any(axis=1))
    reached = np.flatnonzero(m.reshape(m.shape[0], -1).any(axis=1))
    return {
        "dice": float(2.0 * (m & truth).sum() / max(m.sum() + truth.sum(), 1)),
        "volume_error": float(m.sum() / truth.sum() - 1.0),
        "slices": (lesion.first, lesion.last), "label_slices": (int(zs[0]), int(zs[-1])),
        "leak": int(((reached < zs[0]) | (reached > zs[-1])).sum()),
        "stops": tuple(s.value for s in lesion.stop_reasons),
    }


def single_call(seg, image, box, repeats: int) -> float:
    """Median seconds of one slice embedded afresh and one box decoded."""
    from app.pipeline.types import SegPrompt

    times = []
    for r in range(repeats):
        t = time.perf_counter()
        seg.set_image(image, f"bench-single-{r}-{time.time_ns()}")
        seg.predict([SegPrompt(box=box)])
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-slices", type=int, default=64, help="propagation budget per direction")
    ap.add_argument("--device", default=None, help="auto (default), cpu, cuda, ...")
    ap.add_argument("--accuracy", action="store_true", help="also Dice / volume error / leak, care vs naive")
    args = ap.parse_args(argv)

    from dataclasses import replace

    from app.pipeline.segmentation.litemedsam import LiteMedSAMSegmenter
    from app.pipeline.segmentation.propagate import PropagationRules, propagate_box
    from app.study.display import slice_rgb
    from app.study.display_frame import display_frame

    seg = LiteMedSAMSegmenter(device=args.device)
    print(f"LiteMedSAM on {seg.info.device}")
    volume, truth, k, box = load_case("CT tumour")
    frame = display_frame(volume)
    seg.set_image(slice_rgb(volume, k), "warm-up")  # first-call overheads out of both figures
    ref = single_call(seg, slice_rgb(volume, k), box, args.repeats)
    rules = replace(PropagationRules(), max_slices=args.max_slices)
    per_slice = []
    for _ in range(args.repeats):
        seg.clear_embeddings()  # fresh embeddings: the real cost
        lesion = propagate_box(seg, volume, frame, k, box, rules=rules)
        per_slice.append(lesion.seconds / len(lesion.per_slice))
        assert lesion.embedded == len(lesion.per_slice), "one embedding per slice looked at"
    sec = statistics.median(per_slice)
    print(f"single-slice call (embed + 1 box)   {ref * 1000:8.1f} ms")
    print(f"propagation, per slice looked at    {sec * 1000:8.1f} ms   ratio {sec / ref:5.2f}x "
          f"({len(lesion.per_slice)} slices, {lesion.embedded} embedded, slices {lesion.first}..{lesion.last})")

    if args.accuracy:
        print(f"\n{'case':<10} {'rules':<6} {'Dice':>6} {'vol err':>8} {'slices':>9} {'label':>9} {'leak':>5}  stops")
        for name in CASES:
            volume, truth, k, box = load_case(name)
            frame = display_frame(volume)
            for r in (PropagationRules.naive(), rules):
                s = scores(propagate_box(seg, volume, frame, k, box, rules=r), truth)
                print(f"{name:<10} {r.name:<6} {s['dice']:6.3f} {s['volume_error']:+8.1%} "
                      f"{'%d..%d' % s['slices']:>9} {'%d..%d' % s['label_slices']:>9} {s['leak']:5d}  "
                      f"{' / '.join(s['stops'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
