"""Run every benchmark in this folder, one after another, each in its own process.

Each benchmark prints its figures as ratios against a reference it measures in the same
run (these machines are noisy; absolute times are for context only).

    .venv/bin/python benchmarks/run_all.py            # everything (the flow-batching one takes minutes)
    .venv/bin/python benchmarks/run_all.py loading render   # a selection, by name without bench_
    .venv/bin/python benchmarks/run_all.py --quick    # every one at its smallest repeats / sizes (CI)

``--quick`` is a smoke run so that a broken benchmark fails CI: its figures are printed, never
checked (one repeat on a busy machine says little). The exit status is non-zero if any
benchmark exits non-zero (an exception included).

``real_size`` (a 2B-shaped model: ~14 GB RAM, 4 GB in build/, over 10 minutes on 2 cores) and
``prefix_cache`` (two real vLLM server starts) run only when named; ``concurrency`` runs its
loopback variant here (``--server vllm`` on request).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ON_REQUEST = {"real_size", "prefix_cache"}

# Each benchmark's smallest settings that still run every code path it measures.
QUICK: dict[str, list[str]] = {
    "concurrency": ["--clients", "1,2", "--questions", "1", "--delay", "0.05"],  # loopback only
    "coordinator": ["--repeats", "1", "--service-delay", "0.05"],
    # 4 + 4 layers instead of InternVL3-2B's 28 + 24 (the benchmark prints the reduced depth).
    "flow_batching": ["--repeats", "1", "--new-tokens", "4", "--text-layers", "4", "--vision-layers", "4"],
    "loading": ["--repeat", "1", "--slices", "64", "--memory-slices", "100"],
    "pipeline_overhead": ["--runs", "1", "--tokens", "4"],
    "propagation": ["--repeats", "1", "--max-slices", "1"],  # the seed and one slice each way
    "remote_flow": ["--repeats", "1", "--delay", "0.05"],
    "render": ["--frames", "10"],
    "segmentation": ["--repeats", "1"],
    "study_scope": ["--tokens", "4"],
    "ui_stall": ["--runs", "1", "--sleep", "0.2"],
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="benchmarks to run, by name without bench_ (default: all)")
    ap.add_argument("--quick", action="store_true", help="smallest repeats / sizes; figures not meaningful")
    args = ap.parse_args(argv)
    benches = sorted(HERE.glob("bench_*.py"))
    if args.names:
        wanted = {a.removeprefix("bench_").removesuffix(".py") for a in args.names}
        benches = [b for b in benches if b.stem.removeprefix("bench_") in wanted]
        if not benches:
            print(f"no benchmark named {', '.join(sorted(wanted))}", file=sys.stderr)
            return 1
    else:
        benches = [b for b in benches if b.stem.removeprefix("bench_") not in ON_REQUEST]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    failed = []
    start = time.perf_counter()
    for bench in benches:
        name = bench.stem.removeprefix("bench_")
        if args.quick and name not in QUICK:  # a new benchmark must say how it runs quickly
            print(f"\n=== {bench.name}: no --quick settings in run_all.QUICK", file=sys.stderr, flush=True)
            failed.append(bench.name)
            continue
        extra = QUICK[name] if args.quick else []
        print(f"\n=== {bench.name} {' '.join(extra)}".rstrip(), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(bench), *extra], cwd=HERE.parent, env=env)
        print(f"--- {bench.name}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(bench.name)
    print(f"\n{len(benches)} benchmark(s) in {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
