"""Where a model runs and in which precision.

CUDA when present (bf16 where the GPU supports it, else fp16); otherwise CPU in float32, with a
warning the engine shows the radiologist because an 8B model on CPU takes minutes per question.
``CARE_DEVICE`` (auto | cpu | cuda | cuda:N | mps) and ``CARE_DTYPE`` (auto | float32 | float16 |
bfloat16) override the choice, as does a profile option or a CLI flag passed in explicitly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from app.pipeline.types import PipelineError

CPU_WARNING = "running on CPU: expect minutes per question"

_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cpu" | "cuda" | "cuda:1" | "mps"
    dtype: str  # "float32" | "float16" | "bfloat16"
    warning: str | None = None

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


def _default_dtype(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        with torch.cuda.device(torch.device(device)):
            # Native bf16 needs Ampere or newer; emulated bf16 would be slower than fp16.
            return "bfloat16" if torch.cuda.is_bf16_supported(including_emulation=False) else "float16"
    if device == "mps":
        return "float16"
    return "float32"


def choose_device(device: str | None = None, dtype: str | None = None) -> DeviceChoice:
    """Resolve the device/dtype: explicit argument, then environment, then auto-detection."""
    import torch

    requested = (device or os.environ.get("CARE_DEVICE") or "auto").strip().lower()
    requested_dtype = (dtype or os.environ.get("CARE_DTYPE") or "auto").strip().lower()

    if requested == "auto":
        resolved = "cuda" if torch.cuda.is_available() else "cpu"
    elif requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PipelineError(f"device {requested!r} requested but no CUDA GPU is available (use --device cpu)")
        resolved = requested
    elif requested == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise PipelineError("device 'mps' requested but Apple Metal is not available (use --device cpu)")
        resolved = "mps"
    elif requested == "cpu":
        resolved = "cpu"
    else:
        raise PipelineError(f"unknown device {requested!r}: use auto, cpu, cuda, cuda:N or mps")

    if requested_dtype == "auto":
        resolved_dtype = _default_dtype(resolved)
    elif requested_dtype in _DTYPES:
        resolved_dtype = requested_dtype
    else:
        raise PipelineError(f"unknown dtype {requested_dtype!r}: use auto, {', '.join(_DTYPES)}")
    if resolved == "cpu" and resolved_dtype == "float16":
        # Half-precision matmuls are unsupported or very slow on most CPUs.
        raise PipelineError("float16 is not supported on CPU: use float32 or bfloat16")

    return DeviceChoice(resolved, resolved_dtype, CPU_WARNING if resolved == "cpu" else None)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def release_cuda_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
