"""eval.json, written all or nothing."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class OutputError(Exception):
    """An --out file could not be written (disk full, unwritable); nothing partial was left."""

    def __init__(self, path: Path, exc: OSError) -> None:
        super().__init__(f"{path}: cannot write ({exc.strerror or exc}); no partial file was left")


def write_summary(out: Path | None, summary: dict[str, Any]) -> Path | None:
    """``out/eval.json`` (temp file, fsync, rename); None without ``out``.

    Raises:
        OutputError: it could not be written.
    """
    from app.pipeline.run_io import write_bytes_atomic

    if not out:
        return None
    path = out / "eval.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, json.dumps(summary, indent=1).encode("utf-8"))
    except OSError as exc:
        raise OutputError(path, exc) from exc
    return path
