"""CARE-Flow's three evidence passes on a real vLLM server with automatic prefix caching on and
off (two servers, one after the other, same tiny head_dim-64 InternVL-hf on the CPU).

    .venv/bin/python benchmarks/bench_prefix_cache.py [--repeats 6] [--tokens 8] [--json]

The remote backend orders every request system prompt, slice (Image-1), text, evidence image
last, so the three passes share their leading tokens. Each repeat uses another CT slice, so a
hit can only come from the passes of the same question, not from an earlier repeat. Reports
the median wall time of one CARE-Flow answer stage (three passes sent together, as the client
does) and of the same three sent one after another, with caching on and off, and vLLM's own
prefix-cache counters (/metrics: tokens queried and hit). On request only (two server starts).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTION = "Is there a mass in the right lung?"


def _slices(n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n`` CT slices around the tumour (lung window, RGB), each with its mask and a crop."""
    import SimpleITK as sitk

    from app.study.display import CT_PRESETS, apply_window

    data = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1"
    vol = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_image.nrrd")))
    lab = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_label.nrrd"))) > 0
    k0 = int(np.argmax(lab.reshape(lab.shape[0], -1).sum(axis=1)))
    ys, xs = np.nonzero(lab[k0])
    cy, cx = int(ys.mean()), int(xs.mean())
    rgb = lambda a: np.ascontiguousarray(np.repeat(a[:, :, None], 3, axis=2))  # noqa: E731
    out = []
    for k in range(k0 - n // 2, k0 - n // 2 + n):
        image = rgb(apply_window(vol[k], CT_PRESETS["lung"]))
        mask = rgb(np.where(lab[k0], 255, 0).astype(np.uint8))
        crop = np.ascontiguousarray(image[max(0, cy - 64): cy + 64, max(0, cx - 64): cx + 64])
        out.append((image, mask, crop))
    return out


def _requests(image, mask, crop):
    from app.pipeline.prompts import SYSTEM_PROMPT, vqa_prompt
    from app.pipeline.types import VLMRequest

    ents = ["lung tumour"]
    return [VLMRequest([image, crop], vqa_prompt(QUESTION, "crop", ents), SYSTEM_PROMPT),
            VLMRequest([image, mask], vqa_prompt(QUESTION, "mask", ents), SYSTEM_PROMPT),
            VLMRequest([image], vqa_prompt(QUESTION, "global", ents), SYSTEM_PROMPT)]


def _counters(base_url: str) -> dict[str, float]:
    """vLLM's prefix-cache counters (tokens) from /metrics."""
    text = urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=10).read().decode()
    out = {}
    for name in ("prefix_cache_queries", "prefix_cache_hits"):
        vals = re.findall(rf"^vllm:{name}_total\{{[^}}]*\}} ([0-9.e+]+)$", text, re.M)
        out[name] = sum(float(v) for v in vals)
    return out


def _measure(caching: bool, slices, tokens: int, eager: bool) -> dict:
    from app.devtools.tiny_models import ensure_tiny_vllm_model
    from app.devtools.vllm_server import VllmServer
    from app.pipeline.profiles import ModelSpec
    from app.pipeline.remote.backend import RemoteVLMBackend
    from app.pipeline.remote.consent import ConsentStore

    model = ensure_tiny_vllm_model(REPO / "build" / "vllm-models")
    log = REPO / "build" / f"vllm-bench-prefix-{'on' if caching else 'off'}.log"
    with VllmServer(model, prefix_caching=caching, log_path=log, enforce_eager=eager) as srv:
        ConsentStore().grant(srv.base_url, who="benchmark", via="benchmark")
        opts = {"endpoint": srv.base_url, "served_model": srv.model, "allow_insecure_http": True,
                "timeout_s": 600.0, "max_concurrency": 3}
        backend = RemoteVLMBackend(ModelSpec(role="vqa", backend="remote", repo_id=srv.model, options=opts))
        image, mask, crop = slices[0]  # warm-up on an image no timed request sends: not counted
        backend.generate(_requests(np.ascontiguousarray(image[:, ::-1]), mask, crop), max_new_tokens=tokens)
        before = _counters(srv.base_url)
        together, one_by_one = [], []
        for image, mask, crop in slices:
            reqs = _requests(image, mask, crop)
            t0 = time.perf_counter()
            backend.generate(reqs, max_new_tokens=tokens)
            together.append(time.perf_counter() - t0)
        mid = _counters(srv.base_url)
        for image, mask, crop in slices:  # the same questions again, now each pass after the other
            reqs = _requests(np.ascontiguousarray(image[::-1]), mask, crop)  # a new slice image: no stale hits
            t0 = time.perf_counter()
            for r in reqs:
                backend.generate([r], max_new_tokens=tokens)
            one_by_one.append(time.perf_counter() - t0)
        after = _counters(srv.base_url)
    def hits(a: dict, b: dict) -> dict:
        queried = b["prefix_cache_queries"] - a["prefix_cache_queries"]
        hit = b["prefix_cache_hits"] - a["prefix_cache_hits"]
        return {"tokens_queried": int(queried), "tokens_hit": int(hit),
                "hit_rate": round(hit / queried, 3) if queried else None}

    return {"prefix_caching": caching, "startup_s": round(srv.startup_s, 1),
            "three_together_s": round(statistics.median(together), 3),
            "three_one_by_one_s": round(statistics.median(one_by_one), 3),
            "together": hits(before, mid), "one_by_one": hits(mid, after)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=6, help="questions (CT slices) per setting")
    ap.add_argument("--tokens", type=int, default=8, help="max new tokens per pass")
    ap.add_argument("--enforce-eager", action="store_true", help="serve without torch.compile (starts faster)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("CARE_CONFIG_DIR", tempfile.mkdtemp(prefix="care-bench-"))
    slices = _slices(args.repeats)
    on = _measure(True, slices, args.tokens, args.enforce_eager)
    off = _measure(False, slices, args.tokens, args.enforce_eager)
    figures = {"repeats": args.repeats, "tokens": args.tokens, "enforce_eager": args.enforce_eager, "on": on, "off": off,
               "together_on_over_off": round(on["three_together_s"] / off["three_together_s"], 3),
               "one_by_one_on_over_off": round(on["three_one_by_one_s"] / off["three_one_by_one_s"], 3)}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"CARE-Flow answer stage on vLLM (tiny InternVL-hf, CPU{', eager' if args.enforce_eager else ''}), "
              f"{args.repeats} questions, medians")
        print("  prefix caching   3 together (tokens hit / queried)   3 one by one (tokens hit / queried)")
        for r in (on, off):
            t, o = r["together"], r["one_by_one"]
            print(f"  {'on ' if r['prefix_caching'] else 'off'}              {r['three_together_s']:8.3f} s"
                  f" ({t['tokens_hit']} / {t['tokens_queried']})   {r['three_one_by_one_s']:10.3f} s"
                  f" ({o['tokens_hit']} / {o['tokens_queried']})")
        print(f"  on / off: together {figures['together_on_over_off']:.2f}x, "
              f"one by one {figures['one_by_one_on_over_off']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
