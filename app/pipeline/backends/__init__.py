"""Model backends behind the protocols of ``app.pipeline.types`` (torch/transformers load lazily).

``app.pipeline.backends.registry`` is the place that knows every backend kind (where its code
lives, how it loads, its installed check); ``app.pipeline.backends.roles.ModelRoles`` resolves a
profile's roles through it.
"""
from __future__ import annotations

from app.pipeline.backends.device import CPU_WARNING, DeviceChoice, choose_device
from app.pipeline.backends.internvl import InternVLBackend, clear_vlm_cache, get_vlm

__all__ = ["CPU_WARNING", "DeviceChoice", "InternVLBackend", "choose_device", "clear_vlm_cache", "get_vlm"]
