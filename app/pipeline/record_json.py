"""Generic dataclass <-> JSON-able dict for the run record (driven by the type hints, so a
new field needs no serialisation code). Split from :mod:`app.pipeline.record`."""
from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from typing import Any

import numpy as np

def encode(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: encode(getattr(obj, f.name))
            for f in dataclasses.fields(obj)
            if not f.metadata.get("transient")
        }
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # run.json is strict JSON: NaN/Infinity are not JSON, "not a number" is null
    return obj


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def decode(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return decode(options[0], data) if len(options) == 1 else data
    if dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {
            f.name: decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.init and not f.metadata.get("transient") and f.name in data
        }
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [decode(item, v) for v in data]
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in data)
        return tuple(decode(a, v) for a, v in zip(args, data))
    if origin is dict:
        _, val = typing.get_args(tp)
        return {k: decode(val, v) for k, v in data.items()}
    if tp is float and isinstance(data, int):
        return float(data)
    return data
