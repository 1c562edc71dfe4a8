"""Remote CARE-Flow wall time: the three evidence passes sent concurrently vs the same three
sent one after another vs a single request, against the loopback chat-completions server
(app/devtools/loopback_server.py) with a fixed per-request service delay standing in for
model time on a batching server (vLLM runs concurrent requests in one batch).

    .venv/bin/python benchmarks/bench_remote_flow.py [--delay 0.25] [--repeats 5] [--json]

Reports medians and ratios measured in the same run; the target is concurrent <= 1.5x one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.devtools.loopback_server import LoopbackChatServer  # noqa: E402
from app.pipeline.profiles import ModelSpec  # noqa: E402
from app.pipeline.remote.backend import RemoteVLMBackend  # noqa: E402
from app.pipeline.remote.consent import ConsentStore  # noqa: E402
from app.pipeline.types import VLMRequest  # noqa: E402


def _ct_images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A real lung-CT slice (lung window), its tumour mask and a zoom crop, all RGB uint8."""
    import SimpleITK as sitk

    from app.study.display import CT_PRESETS, apply_window

    data = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1"
    vol = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_image.nrrd")))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_label.nrrd")))
    k = int(np.argmax((lab > 0).reshape(lab.shape[0], -1).sum(axis=1)))
    rgb = lambda a: np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))  # noqa: E731
    image = rgb(apply_window(vol[k], CT_PRESETS["lung"]))
    mask = rgb(np.where(lab[k] > 0, 255, 0).astype(np.uint8))
    ys, xs = np.nonzero(lab[k])
    cy, cx = int(ys.mean()), int(xs.mean())
    crop = np.ascontiguousarray(image[max(0, cy - 64): cy + 64, max(0, cx - 64): cx + 64])
    return image, mask, crop


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.25, help="server service time per request (s)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    os.environ["CARE_CONFIG_DIR"] = tempfile.mkdtemp(prefix="care-bench-")
    image, mask, crop = _ct_images()
    requests = [
        VLMRequest([image, crop], "Zoom-in crop evidence. Is there a lung nodule?"),
        VLMRequest([image, mask], "Binary mask evidence. Is there a lung nodule?"),
        VLMRequest([image], "Global evidence. Is there a lung nodule?"),
    ]
    with LoopbackChatServer(service_delay_s=args.delay) as srv:
        ConsentStore().grant(srv.base_url, who="benchmark", via="benchmark")
        spec = ModelSpec(role="vqa", backend="remote", repo_id=srv.model,
                         options={"endpoint": srv.base_url, "served_model": srv.model, "max_concurrency": 3})
        backend = RemoteVLMBackend(spec)
        backend.generate(requests[2:])  # warm-up (and the one-off /models check)
        one, seq, conc = [], [], []
        for _ in range(args.repeats):
            one.append(_time(lambda: backend.generate(requests[2:])))
            seq.append(_time(lambda: [backend.generate([r]) for r in requests]))
            conc.append(_time(lambda: backend.generate(requests)))
            assert backend.last_results and all(r.finish_reason == "stop" for r in backend.last_results)
        peak = srv.max_in_flight
    m_one, m_seq, m_conc = (statistics.median(x) for x in (one, seq, conc))
    figures = {
        "service_delay_s": args.delay,
        "repeats": args.repeats,
        "image": list(image.shape),
        "one_request_s": round(m_one, 4),
        "three_sequential_s": round(m_seq, 4),
        "three_concurrent_s": round(m_conc, 4),
        "concurrent_over_one": round(m_conc / m_one, 3),
        "sequential_over_one": round(m_seq / m_one, 3),
        "concurrent_over_sequential": round(m_conc / m_seq, 3),
        "server_max_in_flight": peak,
        "target_concurrent_over_one_max": 1.5,
        "meets_target": m_conc / m_one <= 1.5,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"remote CARE-Flow, loopback server, {args.delay:.2f} s service time/request, "
              f"{args.repeats} repeats (medians), CT slice {image.shape[1]}x{image.shape[0]}")
        print(f"  one request          {m_one:7.3f} s   1.00x")
        print(f"  three sequential     {m_seq:7.3f} s   {m_seq / m_one:.2f}x")
        print(f"  three concurrent     {m_conc:7.3f} s   {m_conc / m_one:.2f}x  "
              f"(target <= 1.5x: {'met' if figures['meets_target'] else 'NOT met'}; server peak in-flight {peak})")
    return 0 if figures["meets_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
