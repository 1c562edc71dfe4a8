"""DICOM Segmentation (SEG) objects read back onto the series they segment. No Qt.

Any SEG (ours, highdicom's, another tool's): BINARY or FRACTIONAL, frames placed either by
geometry (the SEG shares the series' frame of reference and its frames carry
ImagePositionPatient: nearest-neighbour into the series' voxel grid, so a SEG in another
orientation or at another spacing still lands on the right voxels) or, for frames without a
position, by the ReferencedSOPInstanceUID of their source image (pixel for pixel onto that slice).

Each segment becomes a 3-D bool mask in the target volume's array grid ``[z, y, x]``, which the
viewer shows as an overlay in every reformat. A FRACTIONAL segment is shown where its value is
at least half the maximum (said in :attr:`SegSegment.note`). Hostile input (a referenced series
that is not open, truncated pixel data, absurd frame counts) becomes one :class:`LoadError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..limits import over_cap
from ..volume import LoadError, Volume
from .attributes import _text
from .errors import one_line

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
RGB = tuple[int, int, int]
# Fractional segments are shown where value >= this fraction of MaximumFractionalValue.
FRACTIONAL_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class SegSegment:
    """One segment, kept as its bounding box in the target volume's array grid: a SEG of a
    hundred organs on a whole-body CT would not fit in memory as a hundred full volumes."""

    number: int  # SegmentNumber
    label: str  # SegmentLabel
    description: str  # SegmentDescription ("" when absent)
    color: RGB | None  # RecommendedDisplayCIELabValue as sRGB; None when the SEG states none
    algorithm: str  # "AUTOMATIC: name version" / "MANUAL" / ...
    shape: tuple[int, int, int]  # the target volume's [z, y, x]
    offset: tuple[int, int, int]  # [z, y, x] of local[0, 0, 0] in that grid
    local: np.ndarray = field(repr=False)  # bool, the segment's bounding box (empty: (0, 0, 0))
    note: str = ""  # how the shown mask was derived, when not literally the stored bits

    @property
    def voxels(self) -> int:
        return int(np.count_nonzero(self.local))

    @property
    def slices(self) -> list[int]:
        """Array z indices the segment is on."""
        z0 = self.offset[0]
        return [z0 + i for i in np.flatnonzero(self.local.reshape(self.local.shape[0], -1).any(axis=1))]

    @property
    def mask(self) -> np.ndarray:
        """A new full bool [z, y, x] mask in the target's grid (allocates one volume of bools)."""
        full = np.zeros(self.shape, bool)
        if self.local.size:
            z, y, x = self.offset
            dz, dy, dx = self.local.shape
            full[z:z + dz, y:y + dy, x:x + dx] = self.local
        return full


def _cropped(full: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
    """(offset, bounding-box copy) of a full mask; an empty mask gives a (0, 0, 0) box."""
    nz = [np.flatnonzero(full.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if any(ix.size == 0 for ix in nz):
        return (0, 0, 0), np.zeros((0, 0, 0), bool)
    (z0, z1), (y0, y1), (x0, x1) = ((int(ix[0]), int(ix[-1]) + 1) for ix in nz)
    return (z0, y0, x0), full[z0:z1, y0:y1, x0:x1].copy()


@dataclass(frozen=True, eq=False)
class SegOverlay:
    """One SEG instance placed on one loaded volume."""

    path: str
    sop_instance_uid: str
    series_uid: str  # the SEG's own series
    series_description: str
    segmentation_type: str  # BINARY / FRACTIONAL
    target: Volume = field(repr=False)  # the loaded series its frames were placed on
    placement: str  # "geometry" / "referenced instances" / "geometry and referenced instances"
    segments: tuple[SegSegment, ...]
    frames_placed: int
    frames_total: int
    warnings: tuple[str, ...] = ()


class SegReadError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(one_line(reason))
        self.reason = one_line(reason)


def is_seg(ds: Any) -> bool:
    return _text(ds, "SOPClassUID") == SEG_SOP_CLASS


def read_seg(path: str, volumes: Sequence[Volume]) -> SegOverlay | LoadError:
    """The SEG at ``path`` placed on the one of ``volumes`` it references, or why not."""
    try:
        return _read(path, volumes)
    except SegReadError as exc:
        return LoadError(path, f"DICOM SEG not shown: {exc.reason}")


# ----------------------------------------------------------------------------- reading --
def _read(path: str, volumes: Sequence[Volume]) -> SegOverlay:
    import pydicom

    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt files
        raise SegReadError(f"unreadable ({one_line(exc, 120)})") from None
    if not is_seg(ds):
        raise SegReadError("not a Segmentation Storage object")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if rows <= 0 or cols <= 0 or n_frames <= 0:
        raise SegReadError(f"invalid size {cols}x{rows}, {n_frames} frames")
    if (too_big := over_cap((cols, rows, n_frames), "declares")):
        raise SegReadError(too_big)
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence", []))
    if len(per_frame) != n_frames:
        raise SegReadError(f"NumberOfFrames is {n_frames} but {len(per_frame)} per-frame descriptions are present")
    seg_type = _text(ds, "SegmentationType").upper() or "BINARY"
    if seg_type not in ("BINARY", "FRACTIONAL"):
        raise SegReadError(f"segmentation type {seg_type!r} is not BINARY or FRACTIONAL")
    segments_meta = {int(item.SegmentNumber): item for item in ds.get("SegmentSequence", []) if "SegmentNumber" in item}
    if not segments_meta:
        raise SegReadError("no segments (empty SegmentSequence)")
    target, ref_note = _target_volume(ds, volumes)
    pixels = _pixels(ds, n_frames, rows, cols, seg_type)

    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    same_frame_of_reference = bool(_text(ds, "FrameOfReferenceUID")) and _text(ds, "FrameOfReferenceUID") == _frame_of_reference(target)
    by_uid = _instance_index(target)
    by_uid_frames: dict[int, list[tuple[int, int]]] = {}  # segment -> (frame, slice)
    geometric: dict[int, list[tuple[int, _Plane]]] = {}
    placed, unplaced = 0, 0
    warnings: list[str] = [ref_note] if ref_note else []
    for f, item in enumerate(per_frame):
        number = _segment_number(item, shared)
        if number not in segments_meta:
            unplaced += 1
            continue
        plane = _plane(item, shared, rows, cols) if same_frame_of_reference and not target.projection else None
        if plane is not None:
            geometric.setdefault(number, []).append((f, plane))
            placed += 1
            continue
        k = _referenced_slice(item, by_uid)
        if k is None or (rows, cols) != target.array.shape[1:3]:
            unplaced += 1
            continue
        by_uid_frames.setdefault(number, []).append((f, k))
        placed += 1
    crops: dict[int, tuple[tuple[int, int, int], np.ndarray]] = {}
    for number in set(geometric) | set(by_uid_frames):
        # One full mask at a time, cropped to its box before the next.
        full = np.zeros(target.array.shape[:3], bool)
        for f, k in by_uid_frames.get(number, []):
            full[k] |= pixels[f]
        if number in geometric:
            _place_by_geometry(full, target, [(pixels[f], p) for f, p in geometric[number]])
        crops[number] = _cropped(full)
        del full
        if crops[number][1].size == 0 and any(pixels[f].any() for f, _ in geometric.get(number, [])):
            label = _text(segments_meta[number], "SegmentLabel") or f"segment {number}"
            warnings.append(f"segment {label!r}: its set pixels lie outside {_name(target)}; nothing is drawn")
    if placed == 0:
        raise SegReadError(f"none of its {n_frames} frames could be placed on {_name(target)}")
    if unplaced:
        warnings.append(f"{unplaced} of {n_frames} frames could not be placed (no position or referenced image in the open series)")
    placement = ("geometry and referenced instances" if geometric and by_uid_frames
                 else "geometry" if geometric else "referenced instances")
    note = f"FRACTIONAL: shown where the value is >= {FRACTIONAL_THRESHOLD:g} of the maximum" if seg_type == "FRACTIONAL" else ""
    segments = tuple(
        SegSegment(
            number=n,
            label=_text(meta, "SegmentLabel") or f"segment {n}",
            description=_text(meta, "SegmentDescription"),
            color=_cielab_to_rgb(meta.get("RecommendedDisplayCIELabValue")),
            algorithm=_algorithm(meta),
            shape=tuple(int(v) for v in target.array.shape[:3]),  # type: ignore[arg-type]
            offset=crops.get(n, ((0, 0, 0), None))[0],
            local=crops[n][1] if n in crops else np.zeros((0, 0, 0), bool),
            note=note,
        )
        for n, meta in sorted(segments_meta.items())
    )
    return SegOverlay(
        path=path,
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        series_description=_text(ds, "SeriesDescription"),
        segmentation_type=seg_type,
        target=target,
        placement=placement,
        segments=segments,
        frames_placed=placed,
        frames_total=n_frames,
        warnings=tuple(warnings),
    )


def _pixels(ds: Any, n_frames: int, rows: int, cols: int, seg_type: str) -> np.ndarray:
    """(frames, rows, cols) bool; truncated or undecodable pixel data is a SegReadError."""
    if "PixelData" not in ds:
        raise SegReadError("no pixel data")
    bits = int(ds.get("BitsAllocated", 1) or 1)
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if not ts or not ts.is_encapsulated:
        expected = (rows * cols * n_frames * bits + 7) // 8
        if len(ds.PixelData) < expected:
            raise SegReadError(f"truncated pixel data (expected {expected} bytes, found {len(ds.PixelData)})")
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - decoder errors come in many types
        raise SegReadError(f"pixel data cannot be decoded ({one_line(exc, 120)})") from None
    arr = arr.reshape((n_frames, rows, cols))
    if seg_type == "FRACTIONAL":
        top = float(ds.get("MaximumFractionalValue", 255) or 255)
        return arr >= FRACTIONAL_THRESHOLD * top
    return arr != 0


# ---------------------------------------------------------------------- which series --
def find_target(ds: Any, volumes: Sequence[Volume]) -> tuple[Volume, str] | None:
    """The volume a SEG references (by series UID, then by referenced instances), else one
    sharing its frame of reference (with a note saying so); None when none is open. Needs the
    header only (no pixel data)."""
    referenced = [_text(item, "SeriesInstanceUID") for item in ds.get("ReferencedSeriesSequence", [])]
    candidates = [v for v in volumes if v.series_uid and v.series_uid in referenced]
    if not candidates:
        uids = {_text(src, "ReferencedSOPInstanceUID")
                for item in ds.get("PerFrameFunctionalGroupsSequence", [])
                for der in item.get("DerivationImageSequence", [])
                for src in der.get("SourceImageSequence", [])}
        uids.discard("")
        candidates = [v for v in volumes if uids & set(_instance_index(v))]
    if candidates:
        # Several volumes of one series (split by the loader): the one with most slices.
        return max(candidates, key=lambda v: v.num_slices), ""
    frame_of_reference = _text(ds, "FrameOfReferenceUID")
    same = [v for v in volumes if frame_of_reference and _frame_of_reference(v) == frame_of_reference
            and not v.projection and not is_seg(v.headers[0])]
    if same:
        v = max(same, key=lambda v: v.num_slices)
        return v, f"shown on {_name(v)} (same frame of reference); the referenced series {referenced_series(ds)} is not open"
    return None


def referenced_series(ds: Any) -> str:
    """The series UID(s) a SEG names, for messages."""
    uids = [_text(item, "SeriesInstanceUID") for item in ds.get("ReferencedSeriesSequence", [])]
    return ", ".join(u for u in uids if u) or "(none named)"


def _target_volume(ds: Any, volumes: Sequence[Volume]) -> tuple[Volume, str]:
    found = find_target(ds, volumes)
    if found is None:
        raise SegReadError(f"the series it segments ({referenced_series(ds)}) is not open")
    return found


def _frame_of_reference(v: Volume) -> str:
    """The FrameOfReferenceUID of a DICOM volume ('' when it has none)."""
    return _text(v.headers[0], "FrameOfReferenceUID") if v.headers and not isinstance(v.headers[0], dict) else ""


def _instance_index(v: Volume) -> dict[str, int]:
    """SOPInstanceUID -> array slice, for series of single-frame instances (one header per slice)."""
    if v.frames > 1 or len(v.headers) != v.num_slices or (v.headers and isinstance(v.headers[0], dict)):
        return {}
    out: dict[str, int] = {}
    for k, h in enumerate(v.headers):
        uid = _text(h, "SOPInstanceUID")
        if uid:
            out.setdefault(uid, k)
    return out


def _name(v: Volume) -> str:
    return f"series {v.description or v.series_uid or v.modality}"


# -------------------------------------------------------------------------- per frame --
def _segment_number(item: Any, shared: Any) -> int:
    for group in (item, shared):
        if group is None:
            continue
        seq = group.get("SegmentIdentificationSequence")
        if seq:
            return int(seq[0].get("ReferencedSegmentNumber", 0) or 0)
    return 0


def _referenced_slice(item: Any, by_uid: dict[str, int]) -> int | None:
    for der in item.get("DerivationImageSequence", []):
        for src in der.get("SourceImageSequence", []):
            k = by_uid.get(_text(src, "ReferencedSOPInstanceUID"))
            if k is not None:
                return k
    return None


@dataclass(frozen=True)
class _Plane:
    position: np.ndarray  # LPS mm of the centre of pixel (0, 0)
    row_dir: np.ndarray  # unit vector along a row (increasing column)
    col_dir: np.ndarray  # unit vector down a column (increasing row)
    spacing: tuple[float, float]  # (between rows, between columns) mm
    thickness: float | None
    shape: tuple[int, int]


def _first(group: Any, seq_name: str) -> Any:
    if group is None:
        return None
    seq = group.get(seq_name)
    return seq[0] if seq else None


def _plane(item: Any, shared: Any, rows: int, cols: int) -> _Plane | None:
    pos_item = _first(item, "PlanePositionSequence") or _first(shared, "PlanePositionSequence")
    ori_item = _first(item, "PlaneOrientationSequence") or _first(shared, "PlaneOrientationSequence")
    pix_item = _first(item, "PixelMeasuresSequence") or _first(shared, "PixelMeasuresSequence")
    try:
        pos = np.array([float(x) for x in pos_item.ImagePositionPatient], float)
        ori = np.array([float(x) for x in ori_item.ImageOrientationPatient], float)
        spacing = tuple(float(x) for x in pix_item.PixelSpacing)
    except (AttributeError, TypeError, ValueError):
        return None
    if pos.shape != (3,) or ori.shape != (6,) or len(spacing) != 2 or min(spacing) <= 0 or not np.all(np.isfinite(pos)):
        return None
    r, c = ori[:3], ori[3:]
    if not (np.isclose(np.linalg.norm(r), 1, atol=1e-3) and np.isclose(np.linalg.norm(c), 1, atol=1e-3) and abs(r @ c) < 1e-3):
        return None
    thickness = None
    for name in ("SliceThickness", "SpacingBetweenSlices"):
        try:
            value = float(pix_item.get(name)) if pix_item.get(name) not in (None, "") else None
        except (TypeError, ValueError):
            value = None
        if value and value > 0 and np.isfinite(value):
            thickness = value if thickness is None else min(thickness, value)
    return _Plane(pos, r / np.linalg.norm(r), c / np.linalg.norm(c), (spacing[0], spacing[1]), thickness, (rows, cols))


def _place_by_geometry(mask: np.ndarray, volume: Volume, frames: list[tuple[np.ndarray, _Plane]]) -> None:
    """OR each voxel of ``mask`` whose centre falls inside a set SEG pixel (nearest frame along
    the SEG's normal, within half its slice thickness; nearest pixel in plane)."""
    groups: dict[tuple, list[tuple[np.ndarray, _Plane]]] = {}
    for pixels, plane in frames:
        if pixels.any():  # an empty frame sets nothing
            key = tuple(np.round(np.concatenate([plane.row_dir, plane.col_dir, plane.spacing]), 4))
            groups.setdefault(key, []).append((pixels, plane))
    nz, ny, nx = volume.array.shape[:3]
    direction, spacing, origin = volume.direction, np.asarray(volume.spacing), np.asarray(volume.origin)
    ax, ay, az = (direction[:, i] * spacing[i] for i in range(3))  # LPS step per x, y, z index
    for group in groups.values():
        group = _copy_on_grid(mask, volume, group)  # the frames lying exactly on a slice
        if not group:
            continue
        p0 = group[0][1]
        normal = np.cross(p0.row_dir, p0.col_dir)
        offsets = np.array([normal @ p.position for _, p in group])
        order = np.argsort(offsets)
        offsets = offsets[order]
        stack = np.stack([group[i][0] for i in order])
        positions = np.stack([group[i][1].position for i in order])
        gaps = np.diff(offsets)
        thickness = p0.thickness or (float(gaps[gaps > 1e-6].min()) if np.any(gaps > 1e-6) else None)
        if thickness is None:  # one frame, no thickness stated: the volume's extent along the normal
            thickness = float(sum(abs(normal @ a) for a in (ax, ay, az)))
        half = thickness / 2.0 + 1e-4
        dr, dc = p0.spacing
        # d, u, v are linear in (x, y) on each volume slice: computed once per slice by broadcasting.
        xs, ys = np.arange(nx, dtype=float), np.arange(ny, dtype=float)
        corner_d = [normal @ (origin + ax * i + ay * j) for i in (0, nx - 1) for j in (0, ny - 1)]
        for k in range(nz):
            base = origin + az * k
            d_range = (min(corner_d) + normal @ (az * k), max(corner_d) + normal @ (az * k))
            if d_range[1] < offsets[0] - half or d_range[0] > offsets[-1] + half:
                continue
            d = (normal @ base) + ys[:, None] * (normal @ ay) + xs[None, :] * (normal @ ax)
            idx = np.clip(np.searchsorted(offsets, d), 1, len(offsets) - 1) if len(offsets) > 1 else np.zeros(d.shape, int)
            if len(offsets) > 1:
                left = idx - 1
                idx = np.where(np.abs(d - offsets[left]) <= np.abs(d - offsets[idx]), left, idx)
            near = np.abs(d - offsets[idx]) <= half
            if not near.any():
                continue
            rel_base = base - positions[idx]  # (ny, nx, 3): voxel (0, 0) of this slice minus the frame origin
            rel = rel_base + ys[:, None, None] * ay + xs[None, :, None] * ax
            col = np.rint(rel @ p0.row_dir / dc).astype(np.int64)
            row = np.rint(rel @ p0.col_dir / dr).astype(np.int64)
            inside = near & (col >= 0) & (col < p0.shape[1]) & (row >= 0) & (row < p0.shape[0])
            if inside.any():
                hit = np.zeros((ny, nx), bool)
                hit[inside] = stack[idx[inside], row[inside], col[inside]]
                mask[k] |= hit


def _copy_on_grid(mask: np.ndarray, volume: Volume, group: list[tuple[np.ndarray, _Plane]]) -> list:
    """Frames that are exactly a slice of the volume's grid (same axes, spacing, size, origin
    on a voxel, no thicker than a slice) are copied straight in: what the general placement
    would compute, without its per-voxel geometry. Returns the frames left for it."""
    nz, ny, nx = mask.shape
    sx, sy, sz = volume.spacing
    p0 = group[0][1]
    same_axes = (np.allclose(p0.row_dir, volume.direction[:, 0], atol=1e-4)
                 and np.allclose(p0.col_dir, volume.direction[:, 1], atol=1e-4))
    same_grid = (p0.shape == (ny, nx) and np.isclose(p0.spacing[1], sx, rtol=1e-4)
                 and np.isclose(p0.spacing[0], sy, rtol=1e-4))
    if not (same_axes and same_grid and (p0.thickness is None or p0.thickness <= sz * (1 + 1e-3))):
        return group
    left = []
    for pixels, plane in group:
        i, j, k = volume.lps_to_index(plane.position)[0]
        kk = int(round(k))
        if abs(i) < 1e-3 and abs(j) < 1e-3 and abs(k - kk) < 1e-3 and 0 <= kk < nz:
            mask[kk] |= pixels
        else:
            left.append((pixels, plane))
    return left


# ---------------------------------------------------------------------------- segments --
def _algorithm(meta: Any) -> str:
    kind = _text(meta, "SegmentAlgorithmType")
    name = _text(meta, "SegmentAlgorithmName")
    return f"{kind}: {name}" if kind and name else kind or name


def _cielab_to_rgb(value: Any) -> RGB | None:
    """DICOM's scaled CIELab triplet as sRGB (highdicom's conversion), None when absent/invalid."""
    if value is None:
        return None
    try:
        triple = tuple(int(v) for v in value)
        if len(triple) != 3 or not all(0 <= v <= 0xFFFF for v in triple):
            return None
        from highdicom.color import CIELabColor

        r, g, b = CIELabColor.from_dicom_value(triple).to_rgb()
        return int(r), int(g), int(b)
    except Exception:  # noqa: BLE001 - a bad colour falls back to the viewer's palette
        return None


__all__ = ["FRACTIONAL_THRESHOLD", "SEG_SOP_CLASS", "SegOverlay", "SegSegment", "find_target", "is_seg", "read_seg", "referenced_series"]
