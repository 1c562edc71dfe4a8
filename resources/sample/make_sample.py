"""Build resources/sample/ct-chest-lung1/ from the shared PyRadiomics lung CT.

Picks the 16 slices around the largest tumour cross-section of lung1_label.nrrd
(matched to the DICOM slices through their physical z position, not file order) and
writes them RLE Lossless-compressed with pydicom, keeping geometry and all UIDs.

    .venv/bin/python resources/sample/make_sample.py [SHARED_DATA_DIR]
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import RLELossless

N_SLICES = 16
HERE = Path(__file__).resolve().parent
OUT = HERE / "ct-chest-lung1"

README = """# Sample study: chest CT with a lung tumour (16 slices)

**Source.** The `lung1` case of the PyRadiomics test data (BSD-3-Clause, see
`LICENSE-pyradiomics.txt` in this folder), via the DICOM series in CARE Viewer's shared
test data (`ct-chest-lung1/dicom`: 512×512×48, 0.570×0.570×5.0 mm, Hounsfield units).
The patient name is a placeholder; there is no real patient identity in these files.

**What was changed.** Only the 16 consecutive slices around the largest cross-section of
the tumour label (`lung1_label.nrrd`) are kept, and their pixel data is re-encoded as
RLE Lossless (transfer syntax 1.2.840.10008.1.2.5) with pydicom. The voxel values are
identical to the source; geometry (ImagePositionPatient/OrientationPatient,
PixelSpacing), rescale, window and all UIDs are unchanged. Files were renamed
IM0001..IM0016 in slice order (the viewer sorts by position anyway).

Rebuild with `.venv/bin/python resources/sample/make_sample.py [SHARED_DATA_DIR]`.
"""


def main(shared: Path) -> None:
    src = shared / "ct-chest-lung1"
    label = sitk.ReadImage(str(src / "lung1_label.nrrd"))
    mask = sitk.GetArrayFromImage(label) > 0  # [z, y, x]
    k_best = int(np.argmax(mask.reshape(mask.shape[0], -1).sum(axis=1)))
    z_best = label.TransformIndexToPhysicalPoint((0, 0, k_best))[2]

    files = sorted((src / "dicom").glob("*.dcm"))
    headers = [(f, pydicom.dcmread(f, stop_before_pixels=True)) for f in files]
    headers.sort(key=lambda fh: float(fh[1].ImagePositionPatient[2]))
    zs = np.array([float(h.ImagePositionPatient[2]) for _, h in headers])
    centre = int(np.argmin(np.abs(zs - z_best)))
    start = max(0, min(centre - N_SLICES // 2, len(headers) - N_SLICES))
    chosen = headers[start : start + N_SLICES]

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for i, (f, _) in enumerate(chosen, 1):
        ds = pydicom.dcmread(f)
        ds.compress(RLELossless)  # lossless: the same HU values, ~half the bytes
        ds.save_as(OUT / f"IM{i:04d}.dcm", enforce_file_format=True)
    shutil.copy(shared / "LICENSE-pyradiomics.txt", OUT / "LICENSE-pyradiomics.txt")
    (OUT / "README.md").write_text(README)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"tumour largest at label slice {k_best} (z={z_best:.1f} mm); wrote {len(chosen)} slices "
          f"z={zs[start]:.1f}..{zs[start + N_SLICES - 1]:.1f} mm, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[3] / "shared" / "data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
