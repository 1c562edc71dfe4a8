"""Pipeline overhead outside the model forward passes, on a real 512x512 CT slice.

    .venv/bin/python benchmarks/bench_pipeline_overhead.py [--runs N] [--tokens T]

The engine times every model call itself (``StageTiming.model_seconds``: generate, segmenter
set_image/predict, MiniLM), so overhead = wall time of ``CarePipeline.run`` - model time. It
covers everything the engine adds: windowing and hashing the slice, parsing, confidence and
tau, evidence construction (crop, resize, mask image), prompt building, voting and the record.
Runs use the tiny profile (real backends, random weights) with a clinician box on the real
tumour, so the box route, the crop and the mask evidence all do real work. Target: < 50 ms.
Writing the run folder (PNG encoding) is reported apart: it is I/O after the run.
"""
from __future__ import annotations

import argparse
import os
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_MS = 50.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=16, help="max new tokens per generation (tiny model)")
    args = ap.parse_args()

    import SimpleITK as sitk

    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from app.pipeline.run_io import write_run
    from app.study.loader import load
    from app.devtools.tiny_models import ensure_tiny_models

    data = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1"
    ensure_tiny_models()
    volume = load([data / "dicom"]).volumes[0]
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_label.nrrd"))) > 0
    k = int(label.reshape(label.shape[0], -1).sum(axis=1).argmax())
    ys, xs = np.nonzero(label[k])
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    print(f"slice {k} of {volume.array.shape} ({volume.array.dtype}), box {box}")

    pipe = CarePipeline(load_profile("tiny"), max_new_tokens=args.tokens)
    t0 = time.perf_counter()
    warm = pipe.run(volume, k, "Is there a mass in the right lung?", boxes=[box])
    print(f"warm-up run (loads the models): {time.perf_counter() - t0:.2f} s, status {warm.status}")

    rows = []
    for i in range(args.runs):
        t0 = time.perf_counter()
        rec = pipe.run(volume, k, "Is there a mass in the right lung?", boxes=[box])
        wall = time.perf_counter() - t0
        model = sum(t.model_seconds for t in rec.timings)
        per_stage = {t.stage.value: (t.seconds - t.model_seconds) * 1e3 for t in rec.timings}
        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            write_run(rec, tmp)
            io_ms = (time.perf_counter() - t1) * 1e3
        t2 = time.perf_counter()
        json.dumps(rec.to_dict())
        json_ms = (time.perf_counter() - t2) * 1e3
        rows.append((wall * 1e3, model * 1e3, (wall - model) * 1e3, per_stage, io_ms, json_ms, rec))
        assert rec.status == "completed", rec.errors
        if rec.errors:
            print(f"run {i}: errors recorded: {rec.errors}")

    med = lambda xs: statistics.median(xs)  # noqa: E731
    wall_ms = med([r[0] for r in rows])
    model_ms = med([r[1] for r in rows])
    over_ms = med([r[2] for r in rows])
    print(f"\nruns: {args.runs}; evidence passes per run: {len(rows[-1][6].answers)}, "
          f"masks per run: {len(rows[-1][6].masks)} (accepted {len(rows[-1][6].accepted_masks)})")
    print(f"median wall time            {wall_ms:9.1f} ms")
    print(f"median model time           {model_ms:9.1f} ms")
    print(f"median pipeline overhead    {over_ms:9.1f} ms   (target < {TARGET_MS:.0f} ms: "
          f"{'OK' if over_ms < TARGET_MS else 'OVER'})")
    print(f"overhead / wall             {over_ms / wall_ms:9.3f}")
    print("median overhead per stage (ms): " + ", ".join(
        f"{s} {med([r[3].get(s, 0.0) for r in rows]):.1f}" for s in rows[0][3]))
    print(f"record -> JSON              {med([r[5] for r in rows]):9.1f} ms (inside the run's caller, not the run)")
    print(f"write run folder (PNGs)     {med([r[4] for r in rows]):9.1f} ms (I/O after the run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
