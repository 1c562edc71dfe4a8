"""Loading benchmark: the shared 512x512x48 CT series.

Reports, as medians over several runs in this process:
- load time of ``app.study.loader.load`` vs SimpleITK's ImageSeriesReader on the same
  files (with GetGDCMSeriesFileNames, i.e. discovery + sort + read like ours; and the
  bare Execute on a pre-sorted list), target <= 1.2x;
- time to first image (first ``on_partial`` call);
- peak traced memory during the load (tracemalloc, separate run) vs the volume's bytes,
  target <= 1.5x.

    .venv/bin/python benchmarks/bench_loading.py [SERIES_DIR] [--repeat N]
"""
from __future__ import annotations

import argparse
import os
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import SimpleITK as sitk  # noqa: E402

from app.study.loader import load  # noqa: E402

DEFAULT = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "dicom"


def _sitk_full(folder: str) -> float:
    t = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    img = reader.Execute()
    dt = time.perf_counter() - t
    assert img.GetSize()[2] > 0
    return dt


def _sitk_execute(files: tuple[str, ...]) -> float:
    t = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.Execute()
    return time.perf_counter() - t


def _ours(folder: str) -> tuple[float, float]:
    first: list[float] = []
    t = time.perf_counter()

    def on_partial(vol, done, total):  # type: ignore[no-untyped-def]
        if not first:
            first.append(time.perf_counter() - t)

    res = load(folder, on_partial=on_partial)
    dt = time.perf_counter() - t
    assert res.volumes and not res.errors, res.errors
    return dt, first[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    folder = args.folder
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)

    # Warm the page cache and imports for everyone, then interleave the runs so that
    # machine load affects all readers alike.
    _ours(folder), _sitk_full(folder), _sitk_execute(files)
    ours, first, full, execute = [], [], [], []
    for _ in range(args.repeat):
        gc.collect()
        dt, ft = _ours(folder)
        ours.append(dt)
        first.append(ft)
        gc.collect()
        full.append(_sitk_full(folder))
        gc.collect()
        execute.append(_sitk_execute(files))

    gc.collect()
    tracemalloc.start()
    res = load(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    vol = res.volumes[0]
    nbytes = vol.array.nbytes
    del res

    m = statistics.median
    rows = [
        ("series", f"{vol.size[0]}x{vol.size[1]}x{vol.size[2]} {vol.array.dtype} ({nbytes / 2**20:.1f} MiB)"),
        ("care load (median)", f"{m(ours) * 1e3:.1f} ms"),
        ("sitk GDCM names + Execute", f"{m(full) * 1e3:.1f} ms"),
        ("sitk Execute only", f"{m(execute) * 1e3:.1f} ms"),
        ("ratio vs sitk (names+Execute)", f"{m(ours) / m(full):.2f}x  (target <= 1.2x)"),
        ("ratio vs sitk (Execute only)", f"{m(ours) / m(execute):.2f}x"),
        ("time to first image", f"{m(first) * 1e3:.1f} ms"),
        ("peak traced memory", f"{peak / 2**20:.1f} MiB = {peak / nbytes:.2f}x volume  (target <= 1.5x)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"Loading benchmark, {args.repeat} runs each, {folder}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
