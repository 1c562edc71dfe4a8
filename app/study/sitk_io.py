"""NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr) and MetaImage (.mha/.mhd) via SimpleITK.

SimpleITK already reports origin/direction in LPS, which is our frame. A left-handed
direction matrix (det = -1, e.g. the shared brain NRRD) is made right-handed by
reversing the slice axis, so the same anatomy from NRRD and DICOM gives one array.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .display import unlabelled_window
from .geometry_check import checked_geometry
from .limits import over_cap
from .nifti_check import invalid_geometry_fields, nifti_truncation
from .volume import LoadError, ModalitySource, SourceFormat, Volume, Window

EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def _format(path: str) -> SourceFormat:
    low = path.lower()
    if low.endswith((".nii", ".nii.gz")):
        return SourceFormat.NIFTI
    if low.endswith((".nrrd", ".nhdr")):
        return SourceFormat.NRRD
    return SourceFormat.META


def _reason(exc: Exception) -> str:
    """ITK messages are multi-line with source locations; keep the informative line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        low = ln.lower()
        if "description:" in low:
            return ln.split(":", 1)[1].strip() or ln
    for ln in lines:
        if "unable to determine imageio" in ln.lower() or "could not" in ln.lower():
            return ln[:200]
    return (lines[-1] if lines else type(exc).__name__)[:200]


def make_right_handed(array: np.ndarray, spacing, origin, direction: np.ndarray):  # type: ignore[no-untyped-def]
    """Reverse the slice axis of a left-handed volume; the physical points do not move."""
    direction = np.asarray(direction, float).reshape(3, 3)
    if np.linalg.det(direction) >= 0:
        return array, tuple(origin), direction, False
    nz = array.shape[0]
    dz = direction[:, 2]
    new_origin = np.asarray(origin, float) + dz * spacing[2] * (nz - 1)
    new_dir = direction.copy()
    new_dir[:, 2] = -dz
    return np.ascontiguousarray(array[::-1]), tuple(new_origin), new_dir, True


def read_sitk(path: str) -> Volume | LoadError:
    import SimpleITK as sitk

    # ITK prints multi-line "WARNING: In .../itkNiftiImageIO.cxx" notes on stderr; what
    # matters is reported as LoadError / volume warnings instead.
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        dim = reader.GetDimension()
        # Checked before Execute allocates: the declared size against the cap, and a
        # NIfTI's length against its header (ITK may zero-fill a cut file).
        declared = tuple(reader.GetSize())
        if (too_big := over_cap(declared[:3])):
            return LoadError(str(path), too_big)
        if _format(path) == SourceFormat.NIFTI and (cut := nifti_truncation(str(path))):
            return LoadError(str(path), cut)
        image = reader.Execute()
    except Exception as exc:  # SimpleITK raises RuntimeError with multi-line text
        return LoadError(str(path), f"cannot read {_format(path).value.upper()} file: {_reason(exc)}")
    warnings: list[str] = []
    if dim == 4:
        size = list(image.GetSize())
        warnings.append(f"4D image: showing the first of {size[3]} volumes")
        image = sitk.Extract(image, size[:3] + [0], [0, 0, 0, 0])
        dim = 3
    if dim not in (2, 3):
        return LoadError(str(path), f"unsupported image dimension {dim}")
    metadata = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys()}
    ncomp = image.GetNumberOfComponentsPerPixel()
    array = sitk.GetArrayFromImage(image)
    spacing = list(image.GetSpacing())
    origin = list(image.GetOrigin())
    direction = np.asarray(image.GetDirection(), float).reshape(dim, dim)
    del image  # the numpy copy is all we keep
    if dim == 2:
        array = array[None]
        spacing, origin = spacing + [1.0], origin + [0.0]
        d3 = np.eye(3)
        d3[:2, :2] = direction
        direction = d3
    if ncomp > 1:
        if ncomp not in (3, 4):
            return LoadError(str(path), f"unsupported {ncomp}-component pixels")
        array = _to_rgb8(array[..., :3])
    elif array.dtype == np.float64:
        array = array.astype(np.float32)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8)
    spacing, origin, direction, notes = checked_geometry(spacing, origin, direction)
    warnings.extend(notes)
    if _format(path) == SourceFormat.NIFTI:
        for field in invalid_geometry_fields(str(path)):
            warnings.append(f"invalid {field} in the header; assumed spacing ({', '.join(f'{v:g}' for v in spacing)}) mm, "
                            f"origin ({', '.join(f'{v:g}' for v in origin)}) mm")
    array, origin, direction, flipped = make_right_handed(array, spacing, origin, direction)
    if flipped:
        warnings.append("left-handed orientation: slice axis reversed to make it right-handed")
    name = Path(path).name
    volume = Volume(
        array=array,
        spacing=tuple(spacing),
        origin=tuple(origin),
        direction=direction,
        modality="OT",
        description=name,
        source_format=_format(path),
        source_files=[str(path)],
        headers=[metadata],
        frames=1,
        warnings=warnings,
    )
    if volume.is_rgb:
        volume.window, volume.modality_source = Window(127.5, 255.0, "RGB"), ModalitySource.NONE
    else:
        volume.window, volume.modality_source, volume.modality_hint = unlabelled_window(array)
    return volume


def _to_rgb8(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    a = a.astype(np.float32)
    hi = float(a.max()) or 1.0
    return np.clip(a * (255.0 / hi), 0, 255).astype(np.uint8)
