"""One CARE-Flow question on a random-initialised model of InternVL3-2B-hf's REAL shape, on the CPU.

Real FLOPs and memory without the weights (app/devtools/real_configs.py): 28 Qwen2.5-1.5B layers
x 1536, 151674-token vocabulary, the InternViT-300M tower, through the real backend code
(app/pipeline/backends/internvl.py), on the shared chest CT slice with its tumour mask. Decoding
ignores EOS (min_new_tokens = max_new_tokens) so every run decodes exactly ``--tokens``.

    python benchmarks/bench_real_size.py [--tokens 256] [--repeats 1] [--dtype float32]

Reports seconds and tokens/s of one single (global-evidence) pass as the reference and of the
batched CARE-Flow question (crop, mask, global evidence in one generate), both with the shared
prefix (system, slice, question prefilled once: the default) and unshared (every row prefilled on
its own: the fallback), with the ratios of the same run in wall and CPU time (``--repeats N``
measures the three calls N times in turn, so a change in the machine's other load shows up in
every ratio's spread instead of favouring one call; the verdict uses the median), the load
average around each repeat, the RSS peak during each call (sampled; ru_maxrss is also printed
but includes loading),
and care-paper's peak VRAM per stage under each offload plan (app/pipeline/backends/offload.py)
from the real shapes' bf16 weight bytes and from profiles.toml's estimates.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import statistics
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# $CARE_SHARED_DATA, else shared/data beside the checkout (or beside a worktree's parent folder).
_SHARED = [Path(os.environ["CARE_SHARED_DATA"])] if os.environ.get("CARE_SHARED_DATA") else [
    REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
DATA = next((p for p in _SHARED if p.is_dir()), _SHARED[0]) / "ct-chest-lung1"
TARGET_RATIO = 1.5  # issue 18: a CARE-Flow question <= 1.5x one VQA pass


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: KiB


def rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


class RssSampler:
    """Highest resident set size while the block runs (sampled every 50 ms): the stage's own peak,
    which ru_maxrss cannot give once loading has set a higher process-wide maximum."""

    def __enter__(self):
        self.peak, self._stop = rss_gb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_gb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_gb())


def ct_evidence():
    """(slice RGB, mask RGB, crop RGB) of the labelled tumour's largest slice, lung window."""
    import SimpleITK as sitk

    from app.study.display import CT_PRESETS, slice_rgb
    from app.study.volume import Volume

    img = sitk.ReadImage(str(DATA / "lung1_image.nrrd"))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(DATA / "lung1_label.nrrd"))) > 0
    vol = Volume(sitk.GetArrayFromImage(img), img.GetSpacing(), img.GetOrigin(),
                 np.asarray(img.GetDirection()).reshape(3, 3), modality="CT", window=CT_PRESETS["lung"])
    z = int(label.sum(axis=(1, 2)).argmax())
    rgb = slice_rgb(vol, z)
    m = label[z]
    mask = np.repeat((m * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    ys, xs = np.nonzero(m)
    pad = 16
    crop = np.ascontiguousarray(rgb[max(0, ys.min() - pad): ys.max() + pad, max(0, xs.min() - pad): xs.max() + pad])
    return rgb, mask, crop


def flow_requests():
    from app.pipeline.prompts import evidence_request
    from app.pipeline.types import EvidenceType

    rgb, mask, crop = ct_evidence()
    q, entities = "Is there a mass in the right lung?", ["right lung", "lung mass"]
    return {
        "crop": evidence_request(q, EvidenceType.CROP, [rgb, crop], entities),
        "mask": evidence_request(q, EvidenceType.MASK, [rgb, mask], entities),
        "global": evidence_request(q, EvidenceType.GLOBAL, [rgb], entities),
    }


def care_paper_vram(params: dict[str, int]) -> None:
    """Peak VRAM per stage of care-paper under each plan, two ways: bf16 weights of the real shapes
    (+ profiles.toml's figures for the segmenters), and profiles.toml's vram_gb estimates."""
    from app.pipeline.backends.offload import GB, choose_plan
    from app.pipeline.profiles import load_profile

    profile = load_profile("care-paper")
    table = {str(r): s.vram_gb for r, s in profile.models.items() if s.backend.value != "remote"}
    weights = dict(table, entity=params["2b"] * 2 / GB, vqa=params["8b"] * 2 / GB)
    for label, sizes in (("bf16 weights only (real shapes)", weights), ("profiles.toml vram_gb", table)):
        early = sum(v for k, v in sizes.items() if k != "vqa")
        late = sizes["vqa"]
        print(f"care-paper, {label}: stages 1-2 {early:.1f} GB (" +
              ", ".join(f"{k} {v:.1f}" for k, v in sizes.items() if k != "vqa") + f"), stage 3 {late:.1f} GB")
        for free in (80, 24, 16):
            plan = choose_plan(free * GB, sizes, requested="auto")
            peak = {"keep-all": early + late, "unload-before-vqa": max(early, late), "cpu-offload": late}[plan.plan.value]
            print(f"  {free:3d} GB free -> {plan.plan.value:18s} peak on the GPU {peak:5.1f} GB"
                  + (f"  WARNING {plan.warning}" if plan.warning else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=256, help="new tokens per request (EOS ignored)")
    parser.add_argument("--repeats", type=int, default=1, help="measure the three calls this many times in turn")
    parser.add_argument("--dtype", default="float32", help="CPU compute dtype (the app's CPU default: float32)")
    args = parser.parse_args(argv)

    import torch

    from app.devtools.real_configs import count_params, ensure_real_model
    from app.pipeline.backends.internvl import InternVLBackend
    from app.pipeline.profiles import ModelSpec

    reqs, n = flow_requests(), args.tokens  # first: a missing CT fails before minutes of model building
    params = {s: count_params(s) for s in ("2b", "8b")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1e9:.1f} GB RAM")
    print(f"real shapes: 2B {params['2b'] / 1e9:.3f} B params, 8B {params['8b'] / 1e9:.3f} B params")
    care_paper_vram(params)

    t = time.perf_counter()
    folder = ensure_real_model("2b", "bfloat16")
    print(f"2B-shaped checkpoint: {folder} ({time.perf_counter() - t:.0f} s to build or find)")
    spec = ModelSpec(role="vqa", backend="internvl", repo_id="bench/real-2b", local_dir=folder.name)
    backend = InternVLBackend(spec, folder.parent, device="cpu", dtype=args.dtype)
    t = time.perf_counter()
    backend.ensure_loaded()
    print(f"loaded in {time.perf_counter() - t:.0f} s as {backend.device_choice.dtype}; peak RSS {peak_rss_gb():.1f} GB")


    def run(batch, share=True):
        backend.share_prefix = share
        with RssSampler() as rss:
            t0, c0 = time.perf_counter(), cpu_seconds()
            gens = backend.generate(batch, max_new_tokens=n, min_new_tokens=n)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        return seconds, cpu, rss.peak, gens

    print(f"resident after loading: {rss_gb():.1f} GB")
    flow_reqs = [reqs["crop"], reqs["mask"], reqs["global"]]
    ratios: dict[str, list[float]] = {"shared": [], "unshared": [], "shared_cpu": []}
    same = True
    for rep in range(1, args.repeats + 1):
        print(f"repeat {rep}/{args.repeats}, load average before: {os.getloadavg()[0]:.2f}")
        single, cpu_single, rss_single, _ = run([reqs["global"]])
        print(f"  single pass (global evidence, 1 image): {single:7.1f} s wall, {cpu_single:7.1f} s CPU, "
              f"{n / single:5.2f} tokens/s; RSS peak during the call {rss_single:.1f} GB")
        plain, cpu_plain, rss_plain, plain_gens = run(flow_reqs, share=False)
        print(f"  CARE-Flow question, unshared prefill (3 passes, 1 generate): {plain:7.1f} s wall, "
              f"{cpu_plain:7.1f} s CPU, {3 * n / plain:5.2f} tokens/s; {plain / single:.2f}x the single pass "
              f"({cpu_plain / cpu_single:.2f}x CPU); RSS peak during the call {rss_plain:.1f} GB")
        flow, cpu_flow, rss_flow, gens = run(flow_reqs)
        print(f"  CARE-Flow question, shared prefix of {gens[0].shared_prefix_tokens} tokens (3 passes, 1 generate): "
              f"{flow:7.1f} s wall, {cpu_flow:7.1f} s CPU, {3 * n / flow:5.2f} tokens/s; {flow / single:.2f}x the "
              f"single pass ({cpu_flow / cpu_single:.2f}x CPU), {flow / plain:.2f}x the unshared; "
              f"RSS peak during the call {rss_flow:.1f} GB (VQA stage)")
        print(f"  load average after: {os.getloadavg()[0]:.2f}")
        ratios["shared"].append(flow / single)
        ratios["unshared"].append(plain / single)
        ratios["shared_cpu"].append(cpu_flow / cpu_single)
        same = same and all(a.tokens == b.tokens for a, b in zip(gens, plain_gens))
    print(f"shared-prefix answers token-identical to the unshared path: {same}")
    shared = statistics.median(ratios["shared"])
    spread = lambda k: ", ".join(f"{r:.2f}" for r in ratios[k])  # noqa: E731
    print(f"CARE-Flow / single pass over {args.repeats} repeat(s): shared prefix median {shared:.2f}x "
          f"({spread('shared')}; CPU {spread('shared_cpu')}), unshared median "
          f"{statistics.median(ratios['unshared']):.2f}x ({spread('unshared')})")
    print(f"target <= {TARGET_RATIO}x a single pass: {'met' if shared <= TARGET_RATIO else 'misses'} "
          f"(shared-prefix median, wall time)")
    print(f"process peak RSS (ru_maxrss, includes loading): {peak_rss_gb():.1f} GB")
    print(f"decode: {n} new tokens per request, {args.dtype} on {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
