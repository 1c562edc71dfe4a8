"""Which weights a model folder holds: its revision and weight hashes, for the run record.

A leaf (no torch, no model_store import): the backends read what ``models fetch`` / ``models
import`` wrote -- the ``REVISION`` file (the commit a fetch downloaded) and ``.care-manifest.json``
(every file's size and sha256, hashed once at install) -- without re-hashing GBs on every load.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

REVISION_FILE = "REVISION"  # written by `models fetch`: the commit sha of the downloaded snapshot
CARE_MANIFEST = ".care-manifest.json"  # = app.pipeline.model_store.records.CARE_MANIFEST
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# Where huggingface_hub's snapshot_download(local_dir=...) keeps each file's metadata; the
# first line is the commit the file was downloaded at.
_HUB_METADATA = Path(".cache") / "huggingface" / "download"


def _manifest(folder: Path) -> dict:
    try:
        raw = json.loads((folder / CARE_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def folder_revision(folder: Path, pinned: str = "") -> str:
    """The revision the folder was fetched at: REVISION file, else the manifest's, else the pin."""
    try:
        text = (folder / REVISION_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or str(_manifest(folder).get("revision") or "") or pinned


def manifest_sha256(folder: Path, name: str) -> str:
    """The manifest's sha256 of ``name`` when the file on disk still has the recorded size, else ""."""
    path = folder / name
    for entry in _manifest(folder).get("files", []):
        if isinstance(entry, dict) and entry.get("path") == name:
            try:
                same_size = path.stat().st_size == int(entry.get("size", -1))
            except (OSError, ValueError, TypeError):
                return ""
            return str(entry.get("sha256", "")) if same_size else ""
    return ""


def downloaded_commit(folder: Path, pinned: str) -> str:
    """The commit a hub download used: the pin when it is a commit sha, else the commit the hub's
    download metadata names (a branch pin resolves to whatever it pointed at then)."""
    if _HEX40.match(pinned or ""):
        return pinned
    meta_dir = folder / _HUB_METADATA
    for meta in sorted(meta_dir.glob("*.metadata")) if meta_dir.is_dir() else []:
        try:
            first = meta.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            continue
        if _HEX40.match(first):
            return first
    return pinned


def write_revision(folder: Path, revision: str) -> None:
    if revision:
        (folder / REVISION_FILE).write_text(revision + "\n", encoding="utf-8")
