"""An evaluation's progress log: what lets an interrupted ``eval --out DIR`` resume.

``DIR/progress.jsonl`` is append-only: a header line (what is being evaluated, as a fingerprint)
then one line per finished item, each flushed and fsynced as it is written, so a crash or Ctrl-C
loses at most the item in flight. Resuming checks the fingerprint (the same dataset bytes,
format, language, profile, mode and options) and refuses anything else; a last line cut off by a
crash is dropped (it is the one item that did not finish). An item whose last line is an error
without a run record (a server outage, an unreadable image) is attempted again on resume; an item
with a run record is final, so no run folder is ever written twice.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROGRESS = "progress.jsonl"


class ProgressError(Exception):
    """The folder holds another evaluation, or its log cannot be read or written (one line)."""


def fingerprint(dataset: Path, settings: dict[str, Any]) -> str:
    h = hashlib.sha256()
    with open(dataset, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


@dataclass
class ProgressLog:
    path: Path
    header: dict[str, Any]
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # item key -> its last result

    @classmethod
    def open(cls, out: Path, header: dict[str, Any], *, resume: bool) -> "ProgressLog":
        """Start a log in ``out``, or with ``resume`` continue the one there.

        Raises:
            ProgressError: without ``resume`` the folder already holds an evaluation; with it,
                the folder holds none, or one of something else.
        """
        path = out / PROGRESS
        if not path.exists():
            if resume:
                raise ProgressError(f"{out}: no evaluation to resume there ({PROGRESS} is missing)")
            try:
                out.mkdir(parents=True, exist_ok=True)
                with open(path, "x", encoding="utf-8") as fh:
                    fh.write(json.dumps({"header": header}) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise ProgressError(f"{path}: cannot write ({exc.strerror or exc})") from exc
            return cls(path, header)
        old_header, done, good_bytes = _read(path)
        if not resume:
            raise ProgressError(f"{out} already holds an evaluation ({len(done)} item(s) done); "
                                "pass --resume to continue it, or choose another --out")
        if old_header.get("fingerprint") != header.get("fingerprint"):
            raise ProgressError(f"{out} holds an evaluation of something else (dataset, format, profile, mode or "
                                "options differ); choose another --out")
        if good_bytes < path.stat().st_size:  # a line cut off by a crash: the item in flight
            with open(path, "r+b") as fh:
                fh.truncate(good_bytes)
        return cls(path, old_header, done)

    def finished(self, key: str) -> bool:
        """True when the item needs no new attempt (see the module docstring)."""
        last = self.done.get(key)
        return last is not None and (not last.get("error") or bool(last.get("run_id")))

    def append(self, key: str, result: dict[str, Any]) -> None:
        """Raises ProgressError: the line could not be written."""
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"key": key, "result": result}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise ProgressError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        self.done[key] = result


def _read(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]], int]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProgressError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    header: dict[str, Any] | None = None
    done: dict[str, dict[str, Any]] = {}
    good = 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # cut off mid-write
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if header is None:
            if not isinstance(entry, dict) or not isinstance(entry.get("header"), dict):
                raise ProgressError(f"{path}: not an evaluation progress log")
            header = entry["header"]
        elif isinstance(entry, dict) and isinstance(entry.get("result"), dict):
            done[str(entry.get("key"))] = entry["result"]
        good += len(line)
    if header is None:
        raise ProgressError(f"{path}: not an evaluation progress log")
    if good < len(raw) and raw[good:].count(b"\n") > 1:
        # damage before the last line is not a crash mid-write: never guess, never truncate it
        raise ProgressError(f"{path}: damaged before its last line; it was left as it is")
    return header, done, good
