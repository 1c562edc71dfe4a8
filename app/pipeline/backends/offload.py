"""Which of a profile's models share the GPU at once: a pure plan from free VRAM and model sizes.

care-paper's InternVL3-2B + SAM3 + InternVL3-8B need ~29 GB resident (profiles.toml ``vram_gb``:
bf16 weights plus activations), more than a 24 GB card holds; the 8B alone fits. So the plan is
chosen from the free GPU memory when the first model of a run is asked for:

* ``keep-all``: everything fits; every model stays warm between questions.
* ``unload-before-vqa``: the largest stage fits (stage 1+2: 2B + SAM3; stage 3: the 8B):
  stage 1-2 models are unloaded before the VQA model loads, and the VQA model before they load
  again (each question reloads from the page cache: seconds, not minutes).
* ``cpu-offload``: only the VQA model fits: stage 1-2 models run on the CPU in float32.

``CARE_OFFLOAD`` (auto | keep-all | unload-before-vqa | cpu-offload) overrides the choice.
No torch here: :func:`free_vram_bytes` imports it lazily.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from app.pipeline.types import PipelineError
from app.pipeline.vocab import OffloadPlan, Role

GB = 1e9
VQA_STAGE = frozenset({Role.VQA, Role.COORDINATOR})  # roles resident while stage 3 runs
EARLY_STAGES = frozenset({Role.ENTITY, Role.SEGMENTER, Role.BOX_SEGMENTER})


@dataclass(frozen=True)
class MemoryPlan:
    plan: OffloadPlan
    reason: str  # one line: the numbers the choice came from
    warning: str = ""  # set when even the chosen plan does not fit


def choose_plan(free_bytes: float | None, sizes_gb: Mapping[str, float], requested: str | None = None) -> MemoryPlan:
    """The plan for models of ``sizes_gb`` (role -> GB on the GPU) in ``free_bytes`` of VRAM.

    ``free_bytes`` None: no GPU (everything is in RAM) -> keep-all. Roles sharing one checkpoint
    must be given once (the caller sums distinct instances)."""
    choice = (requested or os.environ.get("CARE_OFFLOAD") or "auto").strip().lower()
    if choice != "auto":
        try:
            return MemoryPlan(OffloadPlan(choice), f"{choice} requested (CARE_OFFLOAD)")
        except ValueError:
            raise PipelineError(f"unknown offload plan {choice!r}: use auto, "
                                f"{', '.join(p.value for p in OffloadPlan)}") from None
    if free_bytes is None:
        return MemoryPlan(OffloadPlan.KEEP_ALL, "no GPU: every model runs in main memory")
    early = sum(gb for role, gb in sizes_gb.items() if Role(role) in EARLY_STAGES)
    late = sum(gb for role, gb in sizes_gb.items() if Role(role) in VQA_STAGE)
    total, free = early + late, free_bytes / GB
    numbers = f"{free:.1f} GB free; stages 1-2 need {early:.1f} GB, stage 3 {late:.1f} GB"
    if total <= free:
        return MemoryPlan(OffloadPlan.KEEP_ALL, f"{numbers}: all fit ({total:.1f} GB)")
    if max(early, late) <= free:
        return MemoryPlan(OffloadPlan.UNLOAD_BEFORE_VQA, f"{numbers}: one stage at a time fits")
    if late <= free:
        return MemoryPlan(OffloadPlan.CPU_OFFLOAD, f"{numbers}: only the VQA model fits on the GPU")
    return MemoryPlan(OffloadPlan.UNLOAD_BEFORE_VQA, f"{numbers}: not even one stage fits",
                      warning=f"the GPU has {free:.1f} GB free but the VQA model needs about {late:.1f} GB: "
                              "expect an out-of-memory error (close other GPU programs or pick a smaller profile)")


def free_vram_bytes(device: str) -> float | None:
    """Free memory of ``device`` plus what this process's allocator already holds (reusable by
    our own models); None off CUDA."""
    if not device.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    dev = torch.device(device)
    free, _total = torch.cuda.mem_get_info(dev)
    return float(free + torch.cuda.memory_reserved(dev))
