"""Group frames into series, split mixed series, and order slices in physical space.

Rules (why: a volume must be geometrically true or it misleads the reader):
- Frames group by Study/Series Instance UID; each multi-frame instance is its own group.
- A series that mixes orientations, image sizes, colour/greyscale, echoes or enhanced
  stacks/temporal positions is split into separate volumes rather than stacked.
- Slices are ordered by their position along the slice normal n = row × col (so the
  slice axis is right-handed), never by InstanceNumber or file name.
- The slice spacing is the median gap; non-uniform gaps, duplicate positions and
  sheared (gantry-tilted) stacks are reported in ``warnings``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from .attributes import _floats
from .frame_ref import FrameRef
from .multiframe import TEMPORAL_KEYS

# Modalities whose images without a position are still slices of one volume.
_CROSS_SECTIONAL = {"CT", "MR", "PT", "NM"}
_ORIENTATION_TOL = 1e-3


@dataclass
class Stack:
    frames: list[FrameRef]  # in array z order
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray  # 3x3, columns = x, y, z axis directions (LPS)
    warnings: list[str] = field(default_factory=list)
    label: str = ""  # appended to the description when one series became several volumes


def _series_key(f: FrameRef) -> tuple[str, ...]:
    key = (f.study_uid, f.series_uid or f.path)
    if f.n_frames > 1:
        key += (f.instance_uid or f.path,)
    return key


def _orientation_clusters(frames: list[FrameRef]) -> list[int]:
    """Cluster index per frame; orientations within tolerance share a cluster."""
    reps: list[np.ndarray] = []
    out = []
    for f in frames:
        o = np.asarray(f.orientation if f.orientation is not None else (np.nan,) * 6)
        for i, r in enumerate(reps):
            if (np.isnan(o).all() and np.isnan(r).all()) or np.allclose(o, r, atol=_ORIENTATION_TOL):
                out.append(i)
                break
        else:
            reps.append(o)
            out.append(len(reps) - 1)
    return out


def build_stacks(frames: list[FrameRef]) -> list[Stack]:
    groups: dict[tuple[str, ...], list[FrameRef]] = defaultdict(list)
    for f in frames:
        groups[_series_key(f)].append(f)
    stacks: list[Stack] = []
    for members in groups.values():
        stacks.extend(_split_series(members))
    return stacks


def _with_notes(stack: Stack) -> Stack:
    """Header values that were ignored (invalid spacing/window) become volume warnings."""
    for note in dict.fromkeys(n for f in stack.frames for n in f.notes):
        stack.warnings.append(note)
    if any("Spacing" in n or "SliceThickness" in n for f in stack.frames for n in f.notes):
        sx, sy, sz = stack.spacing
        stack.warnings.append(f"spacing assumed ({sx:g}, {sy:g}, {sz:g}) mm")
    return stack


def _split_series(members: list[FrameRef]) -> list[Stack]:
    clusters = _orientation_clusters(members)
    parts: dict[tuple, list[FrameRef]] = defaultdict(list)
    for f, c in zip(members, clusters):
        color = f.samples > 1 or f.photometric == "PALETTE COLOR"
        key: tuple = (c, f.rows, f.cols, color, f.echo, f.stack)
        # Projection images (CR/DX/US/...) without a position are separate pictures.
        if f.position is None and f.modality not in _CROSS_SECTIONAL and f.n_frames == 1:
            key += (f.instance_uid or f.path,)
        parts[key].append(f)
    reasons = _split_reasons(list(parts))
    out: list[Stack] = []
    for i, part in enumerate(parts.values()):
        label = f"part {i + 1}/{len(parts)}: {reasons}" if len(parts) > 1 else ""
        for j, stack in enumerate(map(_with_notes, _separate_duplicates(part))):
            if stack.label and label:
                stack.label = f"{label}, {stack.label}"
            elif label:
                stack.label = label
            if len(parts) > 1:
                stack.warnings.append(f"series split into {len(parts)} volumes ({reasons})")
            out.append(stack)
    return out


def _split_reasons(keys: list[tuple]) -> str:
    names = ["orientation", "rows", "columns", "colour", "echo", "stack"]
    diff = [n for i, n in enumerate(names) if len({k[i] for k in keys}) > 1]
    if any(len(k) > 6 for k in keys):
        diff.append("separate images")
    return ", ".join(diff) or "mixed"


def _separate_duplicates(frames: list[FrameRef]) -> list[Stack]:
    """One stack, or several when slices repeat at the same positions (phases)."""
    if not all(f.position is not None and f.orientation is not None for f in frames):
        return [_unpositioned_stack(frames)]
    normal = _normal(frames[0].orientation)  # type: ignore[arg-type]
    proj = np.array([float(np.dot(normal, f.position)) for f in frames])  # type: ignore[arg-type]
    if len(frames) > 1 and _has_duplicates(proj):
        keys = list(TEMPORAL_KEYS) + ["FrameAcquisitionNumber"]
        for key in keys:
            values = [f.temporal.get(key, "") for f in frames]
            distinct = sorted(set(values))
            if len(distinct) < 2 or "" in distinct:
                continue
            groups = [[i for i, v in enumerate(values) if v == d] for d in distinct]
            if all(not _has_duplicates(proj[g]) for g in groups):
                stacks = []
                for n, (d, g) in enumerate(zip(distinct, groups)):
                    s = _positioned_stack([frames[i] for i in g])
                    s.label = f"{key} {d}"
                    s.warnings.append(f"slices at repeated positions separated by {key} ({len(groups)} volumes)")
                    stacks.append(s)
                return stacks
    return [_positioned_stack(frames)]


def _normal(iop: tuple[float, ...]) -> np.ndarray:
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def _has_duplicates(proj: np.ndarray) -> bool:
    s = np.sort(proj)
    return bool(len(s) > 1 and np.any(np.diff(s) < 1e-3))


def _direction(iop: tuple[float, ...] | None) -> np.ndarray:
    if iop is None:
        return np.eye(3)
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    row = row / (np.linalg.norm(row) or 1.0)
    col = col / (np.linalg.norm(col) or 1.0)
    return np.column_stack([row, col, _normal(iop)])


def _positioned_stack(frames: list[FrameRef]) -> Stack:
    first = frames[0]
    normal = _normal(first.orientation)  # type: ignore[arg-type]
    proj = np.array([float(np.dot(normal, f.position)) for f in frames])  # type: ignore[arg-type]
    order = sorted(range(len(frames)), key=lambda i: (proj[i], frames[i].instance_number, frames[i].frame))
    frames = [frames[i] for i in order]
    proj = proj[order]
    warnings: list[str] = []
    gaps = np.diff(proj)
    dup = gaps < 1e-3
    if np.any(dup):
        # Same position twice with nothing to tell the copies apart: keep the first.
        keep = np.concatenate([[True], ~dup])
        warnings.append(f"{int(dup.sum())} slice(s) at duplicate positions ignored")
        frames = [f for f, k in zip(frames, keep) if k]
        proj = proj[keep]
        gaps = np.diff(proj)
    dy, dx = first.pixel_spacing
    if len(gaps):
        dz = float(np.median(gaps))
        if np.max(np.abs(gaps - dz)) > max(0.01 * dz, 1e-3):
            warnings.append(
                f"non-uniform slice spacing ({gaps.min():.3g}–{gaps.max():.3g} mm; using median {dz:.4g} mm)"
            )
        # Offsets with an in-plane component mean a sheared stack (gantry tilt).
        pos = np.array([f.position for f in frames], float)
        rel = pos - pos[0]
        in_plane = rel - np.outer(rel @ normal, normal)
        if np.max(np.linalg.norm(in_plane, axis=1)) > max(0.05, 0.01 * dz):
            warnings.append("slices are sheared (gantry tilt?); geometry is approximate")
    else:
        dz = first.spacing_between or first.slice_thickness or 1.0
    return Stack(
        frames=frames,
        spacing=(dx, dy, float(dz) if dz > 0 else 1.0),
        origin=tuple(float(v) for v in frames[0].position),  # type: ignore[arg-type]
        direction=_direction(first.orientation),
        warnings=warnings,
    )


def _unpositioned_stack(frames: list[FrameRef]) -> Stack:
    frames = sorted(frames, key=lambda f: (f.instance_number, f.frame, f.path))
    first = frames[0]
    warnings = []
    if len(frames) > 1 and first.n_frames == 1:
        warnings.append("no ImagePositionPatient: slices ordered by InstanceNumber, spacing assumed")
    dy, dx = first.pixel_spacing
    dz = first.spacing_between or first.slice_thickness or 1.0
    origin = _floats(first.header, "ImagePositionPatient", 3) or (0.0, 0.0, 0.0)
    return Stack(
        frames=frames,
        spacing=(dx, dy, float(dz) if dz > 0 else 1.0),
        origin=tuple(float(v) for v in origin),  # type: ignore[arg-type]
        direction=_direction(first.orientation),
        warnings=warnings,
    )


__all__ = ["Stack", "build_stacks"]
