"""Tolerant readers of DICOM attributes: missing, empty or malformed values give a default
instead of an exception, because odd files must not stop a scan."""
from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset


def _first(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or value.__class__.__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _num(ds: Dataset | None, keyword: str, default: float | None = None) -> float | None:
    """A numeric attribute, tolerant of missing, empty or malformed values."""
    if ds is None:
        return default
    try:
        v = _first(ds.get(keyword))
        if v is None or v == "":
            return default
        return float(v)
    except (TypeError, ValueError, IndexError):
        return default


def _floats(ds: Dataset | None, keyword: str, n: int) -> tuple[float, ...] | None:
    if ds is None:
        return None
    try:
        v = ds.get(keyword)
        if v is None:
            return None
        vals = tuple(float(x) for x in (v if not isinstance(v, (str, bytes)) else [v]))
        return vals if len(vals) == n else None
    except (TypeError, ValueError):
        return None


def _text(ds: Dataset, keyword: str) -> str:
    try:
        v = ds.get(keyword)
        return "" if v is None else str(_first(v) if not isinstance(v, str) else v).strip()
    except Exception:  # malformed values in odd files must not stop the scan
        return ""
