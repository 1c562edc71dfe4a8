"""Re-export of ``app.devtools.tiny_sam3`` (the tiny SAM3 checkpoint writer)."""
from __future__ import annotations

from app.devtools.tiny_sam3 import ensure_tiny_sam3, tiny_sam3_config, tiny_sam3_processor, write_tiny_sam3  # noqa: F401
