"""Run every benchmark in this folder, one after another, each in its own process.

Each benchmark prints its figures as ratios against a reference it measures in the same
run (these machines are noisy; absolute times are for context only).

    .venv/bin/python benchmarks/run_all.py            # everything (the flow-batching one takes minutes)
    .venv/bin/python benchmarks/run_all.py loading render   # a selection, by name without bench_

``real_size`` (a 2B-shaped model: ~14 GB RAM, 4 GB in build/, over 10 minutes on 2 cores) runs
only when named.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ON_REQUEST = {"real_size"}


def main(argv: list[str]) -> int:
    benches = sorted(HERE.glob("bench_*.py"))
    if argv:
        wanted = {a.removeprefix("bench_").removesuffix(".py") for a in argv}
        benches = [b for b in benches if b.stem.removeprefix("bench_") in wanted]
        if not benches:
            print(f"no benchmark named {', '.join(sorted(wanted))}", file=sys.stderr)
            return 1
    else:
        benches = [b for b in benches if b.stem.removeprefix("bench_") not in ON_REQUEST]
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    failed = []
    for bench in benches:
        print(f"\n=== {bench.name} ===", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(bench)], cwd=HERE.parent, env=env)
        print(f"--- {bench.name}: exit {rc}, {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(bench.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
