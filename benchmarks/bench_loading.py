"""Loading benchmark: the shared 512x512x48 CT series, and large series made from it.

Reports, as medians over several runs in this process (runs interleaved, so machine load
affects every reader alike):
- the shared series: load time of ``app.study.loader.load`` vs SimpleITK's ImageSeriesReader
  on the same files (with GetGDCMSeriesFileNames, i.e. discovery + sort + read like ours; and
  the bare Execute on a pre-sorted list), target <= 1.2x; time to first image;
- a ``--slices`` series (default 500; ``app.devtools.large_series`` writes it once into
  build/bench-series/): time to the first image as the viewer loads it (the provisional
  image, target <= 100 ms) and to the first sorted slice, against the serial loader (one
  header thread, no provisional image: the loader before issue 18) in the same run; full load
  vs that serial loader (target <= 1.0x: no slower) and vs SimpleITK;
- peak traced memory (tracemalloc, a separate run) vs the volume's bytes, on the shared series
  (target <= 1.5x) and on a ``--memory-slices`` series (default 2000, target <= 1.1x). Where
  the series is over the pixel cap in force (the RAM-based default admits a 512x512x2000 series
  from 8 GiB of RAM, see app/study/limits.py), that run raises CARE_MAX_PIXELS to the series'
  size for itself and says so.

    .venv/bin/python benchmarks/bench_loading.py [SERIES_DIR] [--repeat N] [--slices N] [--memory-slices N]
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pydicom  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from app.devtools.large_series import write_large_series  # noqa: E402
from app.study.dicom import assemble, scan  # noqa: E402
from app.study.limits import MAX_PIXELS_ENV, max_pixels  # noqa: E402
from app.study.loader import load  # noqa: E402

DEFAULT = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1" / "dicom"
SERIES_CACHE = REPO / "build" / "bench-series"
m = statistics.median


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


@contextmanager
def _serial_scan():
    """The reference loader: headers and pixels read on one thread, as before issue 18 for an
    uncompressed series (the pixel pool was then for compressed files only)."""
    saved = scan.MAX_WORKERS, assemble.MAX_WORKERS
    scan.MAX_WORKERS = assemble.MAX_WORKERS = 1
    try:
        yield
    finally:
        scan.MAX_WORKERS, assemble.MAX_WORKERS = saved


def _ours(folder: str, *, provisional: bool = True) -> tuple[float, float, float]:
    """(full load, first image shown, first sorted slice) in seconds. The first image is the
    provisional one when the loader gives one (as the viewer asks), else the first slice."""
    first: list[float] = []
    prov: list[float] = []
    t = time.perf_counter()

    def on_partial(vol, done, total):  # type: ignore[no-untyped-def]
        if not first:
            first.append(time.perf_counter() - t)

    def on_provisional(vol):  # type: ignore[no-untyped-def]
        prov.append(time.perf_counter() - t)

    res = load(folder, on_partial=on_partial, on_provisional=on_provisional if provisional else None)
    dt = time.perf_counter() - t
    assert res.volumes and not res.errors, res.errors
    return dt, (prov or first)[0], first[0]


def _peak(folder: str) -> tuple[float, object]:
    gc.collect()
    tracemalloc.start()
    res = load(folder, on_provisional=lambda v: None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert res.volumes and not res.errors, res.errors
    return float(peak), res.volumes[0]


def _size(vol) -> str:  # type: ignore[no-untyped-def]
    return f"{vol.size[0]}x{vol.size[1]}x{vol.size[2]} {vol.array.dtype} ({vol.array.nbytes / 2**20:.1f} MiB)"


def shared_series(folder: str, repeat: int) -> list[tuple[str, str]]:
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(folder)
    _ours(folder), _sitk_full(folder), _sitk_execute(files)  # warm the page cache and imports
    ours, first, first_sorted, full, execute = [], [], [], [], []
    for _ in range(repeat):
        gc.collect()
        dt, ft, st = _ours(folder)
        ours.append(dt)
        first.append(ft)
        first_sorted.append(st)
        gc.collect()
        full.append(_sitk_full(folder))
        gc.collect()
        execute.append(_sitk_execute(files))
    peak, vol = _peak(folder)
    return [
        ("series", _size(vol)),
        ("care load (median)", f"{m(ours) * 1e3:.1f} ms"),
        ("sitk GDCM names + Execute", f"{m(full) * 1e3:.1f} ms"),
        ("sitk Execute only", f"{m(execute) * 1e3:.1f} ms"),
        ("ratio vs sitk (names+Execute)", f"{m(ours) / m(full):.2f}x  (target <= 1.2x)"),
        ("ratio vs sitk (Execute only)", f"{m(ours) / m(execute):.2f}x"),
        ("time to first image (provisional)", f"{m(first) * 1e3:.1f} ms"),
        ("time to first sorted slice", f"{m(first_sorted) * 1e3:.1f} ms"),
        ("peak traced memory", f"{peak / 2**20:.1f} MiB = {peak / vol.array.nbytes:.2f}x volume  (target <= 1.5x)"),
    ]


def large_series(source: str, n: int, repeat: int) -> list[tuple[str, str]]:
    folder = str(write_large_series(source, SERIES_CACHE / f"ct-{n}", n))
    _ours(folder)
    with _serial_scan():
        _ours(folder, provisional=False)
    _sitk_full(folder)
    ours, first, first_sorted, serial, serial_first, itk = [], [], [], [], [], []
    for _ in range(repeat):
        gc.collect()
        dt, ft, st = _ours(folder)
        ours.append(dt)
        first.append(ft)
        first_sorted.append(st)
        gc.collect()
        with _serial_scan():
            dt, ft, _ = _ours(folder, provisional=False)
        serial.append(dt)
        serial_first.append(ft)
        gc.collect()
        itk.append(_sitk_full(folder))
    workers = scan._workers(n)
    return [
        ("series", f"{n} slices of the shared CT, {folder}"),
        ("time to first image (provisional)", f"{m(first) * 1e3:.1f} ms  (target <= 100 ms)"),
        ("  serial loader's first image", f"{m(serial_first) * 1e3:.1f} ms  (ratio {m(first) / m(serial_first):.3f}x)"),
        ("time to first sorted slice", f"{m(first_sorted) * 1e3:.1f} ms"),
        ("care load (median)", f"{m(ours) * 1e3:.1f} ms  ({workers} reading threads)"),
        ("serial loader (1 thread)", f"{m(serial) * 1e3:.1f} ms"),
        ("ratio vs serial loader", f"{m(ours) / m(serial):.2f}x  (target <= 1.0x)"),
        ("ratio vs sitk (names+Execute)", f"{m(ours) / m(itk):.2f}x"),
    ]


def memory_series(source: str, n: int) -> list[tuple[str, str]]:
    folder = str(write_large_series(source, SERIES_CACHE / f"ct-{n}", n))
    first = pydicom.dcmread(next(Path(folder).glob("*.dcm")), stop_before_pixels=True)
    voxels = int(first.Rows) * int(first.Columns) * n
    note = ""
    saved = os.environ.get(MAX_PIXELS_ENV)
    if voxels > max_pixels():
        os.environ[MAX_PIXELS_ENV] = str(voxels)
        note = f" ({MAX_PIXELS_ENV}={voxels} for this run: over the cap in force)"
    try:
        peak, vol = _peak(folder)
    finally:
        if saved is None:
            os.environ.pop(MAX_PIXELS_ENV, None)
        else:
            os.environ[MAX_PIXELS_ENV] = saved
    nbytes = vol.array.nbytes  # type: ignore[attr-defined]
    return [
        ("series", _size(vol) + note),
        ("peak traced memory", f"{peak / 2**20:.1f} MiB = {peak / nbytes:.3f}x volume  (target <= 1.1x)"),
    ]


def _print(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--slices", type=int, default=500, help="large series for time to first image (0: skip)")
    ap.add_argument("--memory-slices", type=int, default=2000, help="large series for peak memory (0: skip)")
    args = ap.parse_args()
    _print(f"Loading benchmark, {args.repeat} runs each, {args.folder}", shared_series(args.folder, args.repeat))
    if args.slices:
        _print(f"Large series, {args.repeat} runs each", large_series(args.folder, args.slices, args.repeat))
    if args.memory_slices:
        _print("Peak memory, large series", memory_series(args.folder, args.memory_slices))


if __name__ == "__main__":
    main()
