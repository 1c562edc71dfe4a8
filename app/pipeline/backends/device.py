"""Where a model runs and in which precision.

CUDA when present (bf16 where the GPU supports it natively, else fp16 -- float32 for Qwen2-based
models, which overflow fp16); otherwise CPU in float32, with a
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


FP16_OVERFLOW_WARNING = (
    "this GPU ({gpu}) has no native bfloat16 and float16 overflows in Qwen2-based models "
    "(answers decode as '!!!!'): running in float32, which needs twice the GPU memory"
)
FP16_FORCED_WARNING = "float16 was requested for a Qwen2-based model: it may overflow to NaN (the run stops if it does)"


def dtype_for(device: str, capability: tuple[int, int] | None = None, *, fp16_safe: bool = True) -> tuple[str, str | None]:
    """The automatic dtype for ``device`` (and a warning): a pure rule, tested with fake GPUs.

    ``capability``: the CUDA compute capability (native bf16 needs Ampere, 8.0, or newer;
    emulated bf16 would be slower than fp16). ``fp16_safe`` False for Qwen2/2.5-based models
    (InternVL3's language model), whose activations overflow float16: they get bfloat16 where
    native, else float32 with a warning, never float16.
    """
    if device.startswith("cuda"):
        if capability is not None and capability >= (8, 0):
            return "bfloat16", None
        if fp16_safe:
            return "float16", None
        gpu = f"compute capability {capability[0]}.{capability[1]}" if capability else "unknown compute capability"
        return "float32", FP16_OVERFLOW_WARNING.format(gpu=gpu)
    if device == "mps":
        return ("float16", None) if fp16_safe else ("float32", None)
    return "float32", None


def _cuda_capability(device: str) -> tuple[int, int]:
    import torch

    major, minor = torch.cuda.get_device_capability(torch.device(device))
    return int(major), int(minor)


def choose_device(device: str | None = None, dtype: str | None = None, *, fp16_safe: bool = True) -> DeviceChoice:
    """Resolve the device/dtype: explicit argument, then environment, then auto-detection
    (:func:`dtype_for`; ``fp16_safe`` False for Qwen2-based models)."""
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

    warnings = [CPU_WARNING] if resolved == "cpu" else []
    if requested_dtype == "auto":
        resolved_dtype, dtype_warning = dtype_for(
            resolved, _cuda_capability(resolved) if resolved.startswith("cuda") else None, fp16_safe=fp16_safe)
        warnings += [dtype_warning] if dtype_warning else []
    elif requested_dtype in _DTYPES:
        resolved_dtype = requested_dtype
        if resolved_dtype == "float16" and not fp16_safe:
            warnings.append(FP16_FORCED_WARNING)
    else:
        raise PipelineError(f"unknown dtype {requested_dtype!r}: use auto, {', '.join(_DTYPES)}")
    if resolved == "cpu" and resolved_dtype == "float16":
        # Half-precision matmuls are unsupported or very slow on most CPUs.
        raise PipelineError("float16 is not supported on CPU: use float32 or bfloat16")

    return DeviceChoice(resolved, resolved_dtype, "; ".join(warnings) or None)


def is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def release_cuda_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
