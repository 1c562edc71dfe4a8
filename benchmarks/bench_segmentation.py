"""Stage 2 cost of 5 entities vs 1 on one 512x512 CT slice (embedding reuse).

    .venv/bin/python benchmarks/bench_segmentation.py [--repeats 5] [--no-sam3]

For each backend: a fresh slice key per repeat (so the image embedding is really computed),
timing ``set_image + predict`` for 1 prompt and for 5 prompts. With the embedding computed once
per slice and the prompts decoded as a batch, 5 entities should cost <= 1.5x one entity.
Reports medians in ms and the ratio measured in the same run. LiteMedSAM uses the real bundled
weights; SAM3 uses the tiny random checkpoint (code-path cost only, not the real model's).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "lung1_image.nrrd"


def ct_slice():
    """Slice 33 of the shared chest CT, windowed (lung window) to RGB as the pipeline does."""
    import numpy as np
    import SimpleITK as sitk

    from app.study.display import CT_PRESETS, slice_rgb
    from app.study.volume import Volume

    img = sitk.ReadImage(str(DATA))
    vol = Volume(sitk.GetArrayFromImage(img), img.GetSpacing(), img.GetOrigin(),
                 np.asarray(img.GetDirection()).reshape(3, 3), modality="CT", window=CT_PRESETS["lung"])
    return slice_rgb(vol, 33)


def bench(seg, image, prompts, repeats: int) -> tuple[float, float]:
    one, five = [], []
    seg.set_image(image, "warm-up")
    seg.predict(prompts[:1])
    for r in range(repeats):
        for n, sink in ((1, one), (5, five)):
            t = time.perf_counter()
            seg.set_image(image, f"{n}-{r}")
            seg.predict(prompts[:n])
            sink.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(one), statistics.median(five)


def report(name: str, one: float, five: float) -> None:
    print(f"{name:<12} 1 entity {one:8.1f} ms   5 entities {five:8.1f} ms   ratio {five / one:5.2f}x (target <= 1.5x)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-sam3", action="store_true")
    args = ap.parse_args(argv)

    from app.pipeline.segmentation.litemedsam import LiteMedSAMSegmenter
    from app.pipeline.types import SegPrompt

    image = ct_slice()
    boxes = [(206, 347, 230, 369), (100, 100, 200, 220), (300, 150, 420, 300), (40, 200, 120, 260), (180, 60, 330, 160)]
    report("LiteMedSAM", *bench(LiteMedSAMSegmenter(), image, [SegPrompt(box=b) for b in boxes], args.repeats))

    if not args.no_sam3:
        from app.pipeline.segmentation.sam3 import Sam3Segmenter
        from app.devtools.tiny_sam3 import ensure_tiny_sam3

        with tempfile.TemporaryDirectory() as tmp:
            seg = Sam3Segmenter(ensure_tiny_sam3(Path(tmp)), repo_id="local/tiny-sam3")
            names = ["left lung", "right lung", "tumour", "heart", "aorta"]
            report("tiny SAM3", *bench(seg, image, [SegPrompt(text=n) for n in names], args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
