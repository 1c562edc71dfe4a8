"""care-paper's stages on a CUDA GPU with random-initialised models of the REAL shapes (< 8 minutes).

    python benchmarks/gpu_check.py [--tokens 256] [--dtype auto|bfloat16|float32]

Builds InternVL3-2B-hf- and InternVL3-8B-hf-shaped checkpoints (app/devtools/real_configs.py; no
download), then on the GPU runs: entity proposal (2B), LiteMedSAM on the shared CT slice, one
CARE-Flow question (8B, crop + mask + global in one generate) and one CARE-Coord round with the
local 8B as coordinator (plan call, Flow, a second coordinator call with the plan prompt standing
in for the review). Prints torch.cuda.max_memory_allocated per stage, seconds per question, dtype.
SAM3 is not run (gated weights; its tiny stand-in says nothing about real memory).
Without CUDA it prints why and exits with status 2.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

NO_CUDA_EXIT = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=256, help="new tokens per request (EOS ignored)")
    parser.add_argument("--dtype", default="auto", help="auto (bfloat16 where supported) | bfloat16 | float32")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU available here; nothing measured (run it on a CUDA machine).")
        return NO_CUDA_EXIT

    from app.devtools.real_configs import ensure_real_model
    from app.pipeline.backends.internvl import InternVLBackend
    from app.pipeline.coordinator.prompts import context_block, plan_prompt
    from app.pipeline.coordinator.schemas import plan_schema
    from app.pipeline.profiles import ModelSpec
    from app.pipeline.prompts import entity_request
    from app.pipeline.segmentation.litemedsam import LiteMedSAMSegmenter
    from app.pipeline.types import SegPrompt, VLMRequest
    from benchmarks.bench_real_size import ct_evidence, flow_requests

    n = args.tokens
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")

    def stage(name, fn):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        print(f"{name:44s} {time.perf_counter() - t:7.1f} s   max_memory_allocated "
              f"{torch.cuda.max_memory_allocated() / 1e9:6.2f} GB")
        return out

    def backend(size):
        folder = ensure_real_model(size, "bfloat16", device="cuda")
        spec = ModelSpec(role="vqa", backend="internvl", repo_id=f"bench/real-{size}", local_dir=folder.name)
        return InternVLBackend(spec, folder.parent, device="cuda", dtype=args.dtype)

    def gen(b, reqs):
        return b.generate(reqs, max_new_tokens=n, min_new_tokens=n)

    rgb, _mask, _crop = ct_evidence()
    q = "Is there a mass in the right lung?"

    small = backend("2b")
    stage("load 2B (entity)", small.ensure_loaded)
    print(f"dtype: {small.device_choice.dtype}")
    stage(f"stage 1 entity proposal (2B, {n} tokens)", lambda: gen(small, [entity_request(q, rgb)]))
    small.unload()

    seg = LiteMedSAMSegmenter(device="cuda")
    def segment():
        seg.set_image(rgb, "gpu-check")
        return seg.predict([SegPrompt(box=(206, 347, 230, 369))])
    stage("stage 2 LiteMedSAM (1 box)", segment)

    big = backend("8b")
    stage("load 8B (VQA)", big.ensure_loaded)
    reqs = flow_requests()
    flow = [reqs["crop"], reqs["mask"], reqs["global"]]
    t = time.perf_counter()
    stage(f"stage 3 CARE-Flow (8B, 3 x {n} tokens)", lambda: gen(big, flow))
    flow_s = time.perf_counter() - t

    context = context_block(q, "CT", (rgb.shape[1], rgb.shape[0]), ["right lung", "lung mass"], [], False)
    coord = VLMRequest([], plan_prompt(context, plan_schema()))
    t = time.perf_counter()
    stage(f"CARE-Coord plan call (8B, {n} tokens)", lambda: gen(big, [coord]))
    stage("CARE-Coord Flow", lambda: gen(big, flow))
    stage(f"CARE-Coord second call (8B, {n} tokens)", lambda: gen(big, [coord]))
    coord_s = time.perf_counter() - t
    print(f"seconds per question: Flow {flow_s:.1f} s, Coord (one round) {coord_s:.1f} s; "
          f"dtype {big.device_choice.dtype}; {n} new tokens per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
