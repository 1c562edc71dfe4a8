"""A run on disk: ``DIR/run.json`` (the record) with its images as PNGs beside it.

Files (names are carried by the record itself, so a reader needs no convention):
- ``slice.png``: the windowed slice the models saw (first image of every evidence pass);
- ``mask_NN.png``: each mask, 0/255 grey, image-sized (accepted or not);
- ``evidence_<type>.png``: the second image of a crop/mask evidence pass.

Writing is crash- and full-disk-safe: a new run folder is assembled under a hidden
``.NAME.partial-PID`` sibling (each file fsynced) and renamed into place only when complete, so
a folder called NAME always holds a whole run; on any error the partial folder is removed.
:func:`write_bytes_atomic` gives single files (masks, eval.json, reports) the same guarantee.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from .record import RunRecord

RUN_JSON = "run.json"
SLICE_PNG = "slice.png"


def _partial_name(path: Path, tag: str = "partial") -> Path:
    """A hidden sibling of ``path`` that no reader takes for the finished file (same folder, so
    the final rename is atomic); the extension is kept for encoders that look at it."""
    return path.with_name(f".{path.stem}.{tag}-{os.getpid()}{path.suffix}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_fully(path: Path, data: bytes) -> None:
    """Write ``data`` to a new ``path`` and fsync it; on any error the file is removed.

    Raises:
        OSError: e.g. ENOSPC (disk full), EFBIG, EACCES.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``path`` all-or-nothing: temp file in the same folder, fsync, rename over ``path``.

    Raises:
        OSError: the write failed (disk full, unwritable); ``path`` is unchanged and no temp
            file is left behind.
    """
    final = Path(path)
    tmp = _partial_name(final)
    _write_fully(tmp, data)
    try:
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent if str(final.parent) else Path("."))
    return final


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB (H, W, 3) uint8 image or a (H, W) bool/uint8 mask (0/255).

    Raises:
        OSError: the image cannot be encoded.
    """
    img = np.asarray(image)
    if img.dtype == bool:
        img = np.where(img, np.uint8(255), np.uint8(0))
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def _run_files(record: RunRecord) -> dict[str, bytes]:
    """Every file of the run folder, run.json last (a reader keys on it)."""
    files: dict[str, bytes] = {}
    if record.slice_rgb is not None:
        files[SLICE_PNG] = encode_png(record.slice_rgb)
    for m in record.masks:
        if m.mask is not None and m.png:
            files[m.png] = encode_png(m.mask)
    for item in record.evidence:
        # images[0] is the slice itself (slice.png); the rest are the evidence images.
        for name, img in zip(item.image_files, item.images):
            if name != SLICE_PNG:
                files[name] = encode_png(img)
    if record.study is not None:  # the other evidence slices' images (app.pipeline.study_record)
        for name, img in record.study.images().items():
            files.setdefault(name, encode_png(img))
    files[RUN_JSON] = json.dumps(record.to_dict(), indent=1, ensure_ascii=False, allow_nan=False).encode("utf-8")
    return files


def _read_png(path: Path, color: bool) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB) if color else img


def write_run(record: RunRecord, out_dir: str | Path) -> Path:
    """Write the record and its images into ``out_dir``; returns the run.json path.

    A new or empty ``out_dir`` appears complete or not at all (staged, then renamed). A
    non-empty one (the caller's ``--force``) is never deleted: each file is replaced atomically
    and run.json last.

    Raises:
        OSError: a write failed (disk full, unwritable, ``out_dir`` is a file); nothing
            partial is left under the final name.
    """
    out = Path(out_dir).absolute()
    files = _run_files(record)  # encoded before touching the disk
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        for name, data in files.items():
            write_bytes_atomic(out / name, data)
        return out / RUN_JSON
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)  # left by a killed process with our pid
    try:
        stage.mkdir()
        for name, data in files.items():
            _write_fully(stage / name, data)
        _fsync_dir(stage)
        if out.is_dir():
            out.rmdir()  # empty (checked above): a rename onto it is not portable
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _fsync_dir(out.parent)
    return out / RUN_JSON


def read_run(path: str | Path, load_images: bool = True) -> RunRecord:
    """Read ``DIR`` or ``DIR/run.json`` back; images are re-attached when ``load_images``."""
    p = Path(path)
    if p.is_dir():
        p = p / RUN_JSON
    record = RunRecord.from_dict(json.loads(p.read_text(encoding="utf-8")))
    if not load_images:
        return record
    folder = p.parent
    if (folder / SLICE_PNG).is_file():
        record.slice_rgb = _read_png(folder / SLICE_PNG, color=True)
    for m in record.masks:
        if m.png and (folder / m.png).is_file():
            m.mask = _read_png(folder / m.png, color=False) > 127
    for item in record.evidence:
        item.images = [
            record.slice_rgb if name == SLICE_PNG and record.slice_rgb is not None
            else _read_png(folder / name, color=True)
            for name in item.image_files
            if (folder / name).is_file()
        ]
    if record.study is not None:
        record.study.attach(lambda name: _read_png(folder / name, color=True) if (folder / name).is_file() else None,
                            record.slice_rgb)
    return record
