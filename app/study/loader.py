"""``load()``: one entry point for everything a user can open.

``paths`` may be a folder (walked recursively), a file, a list of files, a DICOMDIR,
NIfTI/NRRD/MetaImage files or 2D pictures. Bad input never raises: each unreadable
file becomes a one-line :class:`LoadError` and the rest still loads. Only programmer
errors (wrong argument types, bugs) propagate.

Callbacks (all optional, called on the loading thread):
- ``progress(done, total, message)``: per phase ("Reading DICOM headers", "Reading
  pixel data", ...); ``total`` is the size of the current phase.
- ``cancel()``: polled between files/slices; when it returns True, loading stops and
  the result has ``cancelled=True`` and no volumes.
- ``on_partial(volume, slices_done, total)``: a DICOM volume whose final array is being
  filled in place; first call right after its first slice, then periodically and once
  when complete. Read ``volume.array`` anew on each call: in the rare case a slice's
  values overflow int16 the array is replaced by a float32 copy.
- ``on_provisional(volume)``: on a large DICOM series, one file's image (the middle file
  by name) as a one-slice volume with ``provisional=True``, before all headers are read
  and sorted. For display only, labelled as such; ``on_partial`` then brings the series.
"""
from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import Callable, Sequence

from . import image2d, sitk_io
from .dicom import Cancelled, load_dicom, referenced_files
from .dicom.assemble import PartialCallback
from .dicom.scan import ProvisionalCallback
from .volume import DicomDocument, LoadError, LoadResult, Volume

ProgressCallback = Callable[[int, int, str], None]

# Files a folder walk passes over silently: documentation, scripts, archives and the
# raw data files that .mhd/.nhdr headers point at (they load through their header).
_SKIP_EXTENSIONS = {
    ".txt", ".md", ".json", ".xml", ".html", ".htm", ".pdf", ".csv", ".tsv", ".py", ".sh", ".bat",
    ".zip", ".tar", ".7z", ".raw", ".zraw", ".icc", ".dump", ".log", ".ini", ".cfg", ".yaml", ".yml",
    ".toml", ".exe", ".dll", ".so", ".db", ".sqlite", ".lnk", ".url",
}
_SKIP_NAMES = {"dicomdir", "license", "readme", "thumbs.db", "desktop.ini", ".ds_store"}


def _suffix(path: str) -> str:
    """``Path(path).suffix`` without building a Path: a folder walk asks it of every file,
    and for a 500-file series pathlib alone cost tens of milliseconds before the first image."""
    name = os.path.basename(path)
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _kind(path: str) -> str:
    low = path.lower()
    if low.endswith(sitk_io.EXTENSIONS):
        return "sitk"
    if low.endswith(image2d.EXTENSIONS):
        return "image2d"
    if os.path.basename(low) == "dicomdir":
        return "dicomdir"
    return "dicom"


def _special_kind(path: str) -> str | None:
    """None for a regular file (or a link to one), else what it is. Opening a FIFO blocks
    until a writer appears and a socket cannot be read at all, so only regular files are
    ever opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    return _special_mode(mode)


def _special_mode(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = ("FIFO (named pipe)" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
            else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")
    return f"not a regular file ({kind}); skipped"


def _walk(folder: Path, errors: list[LoadError]) -> list[str]:
    """Image files under ``folder``, following symlinked folders (studies are often
    assembled from links). Each real folder and file is visited once, by (device, inode),
    so a link loop (a folder linking to itself or its parent) neither hangs nor repeats."""
    out: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirs[:] = []  # a loop or a second link to a folder already walked
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            low = name.lower()
            if low.startswith(".") or low in _SKIP_NAMES or _suffix(low) in _SKIP_EXTENSIONS:
                continue
            if low.endswith(".gz") and not low.endswith(".nii.gz"):
                continue
            path = os.path.join(root, name)
            try:
                fst = os.stat(path)  # one stat per file: the kind check and the inode both use it
            except OSError as exc:
                errors.append(LoadError(path, f"cannot read file: {exc.strerror or exc}"))
                continue
            special = _special_mode(fst.st_mode)
            if special is not None:
                errors.append(LoadError(path, special))
                continue
            if (fst.st_dev, fst.st_ino) in seen_files:
                continue  # the same file reached through another link
            seen_files.add((fst.st_dev, fst.st_ino))
            out.append(path)
    return out


def _as_list(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    if isinstance(paths, Sequence):
        return [os.fspath(p) for p in paths]
    raise TypeError(f"paths must be a path or a sequence of paths, not {type(paths).__name__}")


def load(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    progress: ProgressCallback | None = None,
    cancel: Callable[[], bool] | None = None,
    on_partial: PartialCallback | None = None,
    on_provisional: ProvisionalCallback | None = None,
) -> LoadResult:
    result = LoadResult()
    explicit_dicom: list[str] = []  # named by the user: a non-DICOM file is an error
    walked_dicom: list[str] = []  # found in a folder: a non-DICOM file is skipped quietly
    others: list[tuple[str, str]] = []
    for p in _as_list(paths):
        path = Path(p)
        if path.is_dir():
            skipped: list[LoadError] = []
            found = _walk(path, skipped)
            result.errors.extend(skipped)
            if not found and not skipped:
                result.errors.append(LoadError(str(path), "empty folder (no image files found)"))
            for f in found:
                kind = _kind(f)
                (walked_dicom.append(f) if kind == "dicom" else others.append((kind, f)))
        elif path.is_file():
            kind = _kind(str(path))
            if kind == "dicomdir" or (kind == "dicom" and _is_dicomdir_file(str(path))):
                files, errs = referenced_files(str(path))
                result.errors.extend(errs)
                explicit_dicom.extend(files)
            elif kind == "dicom":
                explicit_dicom.append(str(path))
            else:
                others.append((kind, str(path)))
        elif path.exists():
            result.errors.append(LoadError(str(path), _special_kind(str(path)) or "not a regular file or folder"))
        else:
            result.errors.append(LoadError(str(path), "no such file or folder"))

    try:
        with warnings.catch_warnings():
            # Library warnings about odd values in real-world files would only be noise
            # on the console; what matters is reported as LoadError / volume.warnings.
            warnings.simplefilter("ignore")
            _read_all(result, explicit_dicom, walked_dicom, others, progress, cancel, on_partial, on_provisional)
    except Cancelled:
        return LoadResult(volumes=[], errors=result.errors, cancelled=True)

    if not result.volumes and not result.errors:
        result.errors.append(LoadError(", ".join(_as_list(paths)) or "(nothing)", "no images found"))
    return result


def _read_all(
    result: LoadResult,
    explicit_dicom: list[str],
    walked_dicom: list[str],
    others: list[tuple[str, str]],
    progress: ProgressCallback | None,
    cancel: Callable[[], bool] | None,
    on_partial: PartialCallback | None,
    on_provisional: ProvisionalCallback | None = None,
) -> None:
    dicom_files = list(dict.fromkeys(explicit_dicom + walked_dicom))
    if dicom_files:
        quiet = {f for f in walked_dicom if not _expects_dicom(f)} - set(explicit_dicom)
        set_aside: list = []
        volumes, errors = load_dicom(
            dicom_files, progress=progress, cancel=cancel, on_partial=on_partial,
            on_provisional=on_provisional, quiet_paths=quiet, set_aside=set_aside,
        )
        result.volumes.extend(volumes)
        result.errors.extend(errors)
        _read_set_aside(result, set_aside, progress, cancel)
    for i, (kind, f) in enumerate(others):
        if cancel is not None and cancel():
            raise Cancelled()
        if progress is not None:
            progress(i, len(others), f"Reading {Path(f).name}")
        item: Volume | LoadError = sitk_io.read_sitk(f) if kind == "sitk" else image2d.read_image2d(f)
        if isinstance(item, LoadError):
            result.errors.append(item)
        else:
            result.volumes.append(item)
            if on_partial is not None:
                on_partial(item, item.num_slices, item.num_slices)


def _read_set_aside(result: LoadResult, set_aside: list, progress: ProgressCallback | None,
                    cancel: Callable[[], bool] | None) -> None:
    """SEGs onto the volumes just read (after them: a SEG needs its series), documents listed."""
    from .dicom.attributes import _text
    from .dicom.seg_reader import is_seg, read_seg

    segs = [(p, h) for p, h in set_aside if is_seg(h)]
    for path, header in set_aside:
        if not is_seg(header):
            result.documents.append(DicomDocument(
                path, _text(header, "SOPClassUID"), _text(header, "SOPInstanceUID"),
                _text(header, "StudyInstanceUID"), _text(header, "SeriesInstanceUID"), _text(header, "Modality")))
    for i, (path, _header) in enumerate(segs):
        if cancel is not None and cancel():
            raise Cancelled()
        if progress is not None:
            progress(i, len(segs), "Reading segmentations")
        item = read_seg(path, result.volumes)
        (result.errors if isinstance(item, LoadError) else result.segmentations).append(item)


def _expects_dicom(path: str) -> bool:
    """Names that promise DICOM: .dcm/.dicom/.ima, no extension, or UID-like ('1.2.3')."""
    suffix = _suffix(path).lower()
    return suffix in ("", ".dcm", ".dicom", ".dic", ".ima") or suffix[1:].isdigit()


def _is_dicomdir_file(path: str) -> bool:
    """A DICOMDIR under another name (e.g. copied as DICOMDIR.dcm)."""
    try:
        with open(path, "rb") as fp:
            head = fp.read(1024)
    except OSError:
        return False
    return b"1.2.840.10008.1.3.10" in head


__all__ = ["load"]
