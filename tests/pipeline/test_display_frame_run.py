"""Orientation parity on real data: what the models see is the slice the radiologist sees.

- the shared brain MR stores rows posterior-to-anterior: the run's model image, slice.png and
  masks are the displayed slice (anterior up), not the raw array upside down;
- RAS-stored NIfTI and transposed NRRD copies of the shared CT (written here with SimpleITK,
  the array and the direction flipped together so the physical image is the same) give the
  models byte-identical pixels for the same physical slice as the DICOM;
- a box drawn on the displayed slice lands on the lesion (``segment --box``, the pipeline),
  and ``segment --out`` NIfTI puts the mask back on the series' own voxels.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.pipeline.segmentation.confidence import mask_bbox
from app.pipeline.segmentation.service import image_key
from app.pipeline.vocab import Role
from app.study.display import apply_window, auto_window
from app.study.display_frame import display_frame
from app.study.loader import load
from app.study.reformat import native_plane, slice_geometry
from app.study.volume import Window
from tests.fixtures.ct_tumour import TUMOUR_DRAWN_BOX

pytestmark = pytest.mark.slow

LUNG = Window(-600.0, 1500.0, "CT lung")  # explicit: independent of window detection
QUESTION = "Is there a lesion on the left?"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


def write_copy(volume, path, array: np.ndarray, direction: np.ndarray, origin_ijk: tuple[int, int, int]) -> None:
    """``array`` [z, y, x] stored with ``direction`` (columns: LPS of x, y, z) and its first
    voxel at ``volume``'s voxel ``origin_ijk``: the same physical image, another storage order."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(array))
    img.SetSpacing([float(s) for s in _permuted_spacing(volume, direction)])
    img.SetOrigin([float(c) for c in volume.index_to_lps(np.array(origin_ijk, float))[0]])
    img.SetDirection([float(d) for d in direction.ravel()])
    sitk.WriteImage(img, str(path))


def _permuted_spacing(volume, direction: np.ndarray):
    # The CT's direction is the identity: new axis a runs along patient axis argmax |direction[:, a]|.
    return [volume.spacing[int(np.argmax(np.abs(direction[:, a])))] for a in range(3)]


@pytest.fixture(scope="module")
def copies(ct_volume, tmp_path_factory):
    """(RAS NIfTI volume, transposed NRRD volume, NRRD slice index of DICOM slice k -> k')."""
    assert np.allclose(ct_volume.direction, np.eye(3))  # the DICOM is LPS-stored
    folder = tmp_path_factory.mktemp("ct-copies")
    a = ct_volume.array
    nz, ny, nx = a.shape
    # RAS: x runs right, y anterior (both reversed), z as stored.
    write_copy(ct_volume, folder / "ras.nii.gz", a[:, ::-1, ::-1], np.diag([-1.0, -1.0, 1.0]), (nx - 1, ny - 1, 0))
    # NRRD with columns first (x along P, y along L) and the slices head-to-feet: right-handed.
    d = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    write_copy(ct_volume, folder / "transposed.nrrd", a[::-1].transpose(0, 2, 1), d, (0, 0, nz - 1))
    ras = load([folder / "ras.nii.gz"]).volumes[0]
    nrrd = load([folder / "transposed.nrrd"]).volumes[0]
    return ras, nrrd, folder


def test_copies_store_the_ct_differently(ct_volume, copies):
    ras, nrrd, _ = copies
    k = 33
    assert np.allclose(ras.direction, np.diag([-1, -1, 1])) and not np.array_equal(ras.slice(k), ct_volume.slice(k))
    assert ras.slice(k).shape == (512, 512)
    assert nrrd.array.shape == ct_volume.array.shape and display_frame(nrrd).transposed
    # Same physical voxel: the centre of DICOM voxel (300, 200, 33) is read from each copy.
    lps = ct_volume.index_to_lps(np.array([300.0, 200.0, 33.0]))
    for v in (ras, nrrd):
        i, j, kk = np.rint(v.lps_to_index(lps)[0]).astype(int)
        assert v.array[kk, j, i] == ct_volume.array[33, 200, 300]


def test_same_physical_slice_gives_the_models_identical_pixels(tiny_pipeline_factory, ct_volume, copies):
    ras, nrrd, _ = copies
    pipe = tiny_pipeline_factory(16)
    k = 33
    ctxs = [pipe.prepare(v, kk, QUESTION, window=LUNG)
            for v, kk in ((ct_volume, k), (ras, k), (nrrd, ct_volume.num_slices - 1 - k))]
    ref = ctxs[0]
    for ctx in ctxs[1:]:
        assert ctx.image_rgb.tobytes() == ref.image_rgb.tobytes()
        assert ctx.record.slice_rgb.tobytes() == ref.record.slice_rgb.tobytes()
        assert ctx.pixels.dtype == ref.pixels.dtype and ctx.pixels.tobytes() == ref.pixels.tobytes()
        assert ctx.record.input.pixel_sha256 == ref.record.input.pixel_sha256
        assert ctx.image_key == ref.image_key  # one embedding cache entry for one physical slice
        assert ctx.record.input.edge_labels == ref.record.input.edge_labels
        assert ctx.record.input.pixel_spacing == pytest.approx(ref.record.input.pixel_spacing)
    inp = ref.record.input
    assert (inp.plane, inp.temporal) == ("axial", False)
    assert inp.edge_labels == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert inp.pixel_spacing == pytest.approx(ct_volume.spacing[:2])
    # The raw RAS array is the mirror image: what today's pipeline would have shown the models.
    assert apply_window(ras.slice(k), LUNG).tobytes() != ref.image_rgb[..., 0].tobytes()


def test_pipeline_box_on_the_ras_ct_lands_on_the_tumour(tiny_pipeline_factory, ct_tumour, copies):
    ras, _, _ = copies
    pipe = tiny_pipeline_factory(16, False)
    record = pipe.run(ras, ct_tumour.slice_index, QUESTION, window=LUNG, boxes=[TUMOUR_DRAWN_BOX])
    assert record.status == "completed", record.errors
    (m,) = [m for m in record.masks if m.entity == "clinician region 1"]
    # The DICOM stores LPS, so its display frame is its array: the label needs no mapping here.
    d = dice(m.mask, ct_tumour.mask)
    print(f"RAS CT clinician box Dice {d:.3f}, C {m.confidence:.3f}")
    assert d >= 0.75 and m.box == TUMOUR_DRAWN_BOX


def _segment(*argv: str) -> int:
    from app.cli.main import main

    return main(["segment", *argv])


def test_segment_box_on_the_ras_ct_and_out_nifti_in_voxel_space(ct_tumour, ct_dicom_dir, copies, capsys):
    import SimpleITK as sitk

    ras, _, folder = copies
    k = ct_tumour.slice_index
    png, nii, from_dicom = folder / "mask.png", folder / "mask.nii.gz", folder / "dicom-mask.png"
    box = ",".join(map(str, TUMOUR_DRAWN_BOX))
    opts = ["--slice", str(k), "--box", box, "--window=-600,1500"]
    args = [str(folder / "ras.nii.gz"), *opts]
    assert _segment(*args, "--out", str(png), "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    shown = cv2.imread(str(png), cv2.IMREAD_UNCHANGED) > 0
    d = dice(shown, ct_tumour.mask)  # the PNG is the displayed slice: the DICOM's own layout
    print(f"segment --box on RAS CT: Dice {d:.3f}, C {payload['confidence']:.3f}")
    assert d >= 0.75 and int(shown.sum()) == payload["area_px"]
    # Same physical slice, same box: the very mask the DICOM series gives.
    assert _segment(str(ct_dicom_dir), *opts, "--out", str(from_dicom)) == 0
    np.testing.assert_array_equal(cv2.imread(str(from_dicom), cv2.IMREAD_UNCHANGED) > 0, shown)

    assert _segment(*args, "--out", str(nii)) == 0
    written = sitk.ReadImage(str(nii))
    arr = sitk.GetArrayFromImage(written) > 0
    assert arr.shape == ras.array.shape and arr.sum() == shown.sum() and not arr[:k].any() and not arr[k + 1:].any()
    # Voxel space: the RAS copy's own rows and columns hold the label mirrored.
    assert dice(arr[k], ct_tumour.mask[::-1, ::-1]) == pytest.approx(d)
    np.testing.assert_allclose(written.GetDirection(), np.diag([-1.0, -1.0, 1.0]).ravel(), atol=1e-6)
    # Physically: resampled onto the original label's grid it sits on the tumour.
    back = sitk.Resample(written, _label_image(), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    assert dice(sitk.GetArrayFromImage(back)[k] > 0, ct_tumour.mask) == pytest.approx(d)


def _label_image():
    import SimpleITK as sitk

    from tests.conftest import SHARED_DATA

    return sitk.ReadImage(str(SHARED_DATA / "ct-chest-lung1" / "lung1_label.nrrd"))


# ----- the brain MR: rows stored posterior-to-anterior ----------------------------------------
@pytest.fixture(scope="module")
def mr(mr_dicom_dir, shared_data):
    """(volume, lesion slice, lesion label on that slice in the display frame)."""
    from app.cli.eval_cmd import label_on_grid

    v = load([mr_dicom_dir]).volumes[0]
    assert v.direction[1, 1] == pytest.approx(-1.0)  # row direction -y
    label = load([shared_data / "mr-brain-brain1" / "brain1_label.nrrd"]).volumes[0]
    on_grid = label_on_grid(label, v)  # through LPS: the label's slice order differs
    k = int(on_grid.sum(axis=(1, 2)).argmax())
    return v, k, np.ascontiguousarray(display_frame(v).from_array(on_grid[k]))


def test_mr_run_model_image_is_the_displayed_slice(tiny_pipeline_factory, mr, tmp_path, monkeypatch):
    from app.pipeline.run_io import write_run

    v, k, truth = mr
    window = auto_window(v.array)  # explicit, as the loader's default for MR is today
    pipe = tiny_pipeline_factory(16, False)
    seen: list[np.ndarray] = []
    vlm = pipe.backend(Role.ENTITY)
    real = vlm.generate
    monkeypatch.setattr(vlm, "generate", lambda reqs, **kw: (seen.extend(r.images[0] for r in reqs), real(reqs, **kw))[1])
    box = mask_bbox(truth)
    record = pipe.run(v, k, QUESTION, window=window, boxes=[box])
    assert record.status == "completed", record.errors
    displayed = apply_window(slice_geometry(v, native_plane(v)).extract(v.array, k), window)
    raw = apply_window(v.slice(k), window)
    assert not np.array_equal(displayed, raw)
    # The image every model call got, the record's slice and slice.png: the displayed slice.
    assert seen and all(np.array_equal(img[..., 0], displayed) for img in seen)
    np.testing.assert_array_equal(record.slice_rgb[..., 0], displayed)
    folder = write_run(record, tmp_path / "run").parent
    png = cv2.imread(str(folder / "slice.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(png, displayed)
    inp = record.input
    assert inp.edge_labels == {"left": "R", "right": "L", "top": "A", "bottom": "P"} and inp.plane == "axial"
    assert inp.image_size == (displayed.shape[1], displayed.shape[0])
    # The clinician box drawn on the displayed lesion gives a mask on the displayed lesion.
    (m,) = [m for m in record.masks if m.entity == "clinician region 1"]
    d = dice(m.mask, truth)
    print(f"MR clinician box Dice {d:.3f}, C {m.confidence:.3f}")
    assert d >= 0.75
    assert dice(m.mask, truth[::-1]) < 0.2  # not the raw-array (upside-down) position


def test_segment_box_on_the_mr_display_lands_on_the_lesion(mr, mr_dicom_dir, tmp_path, capsys):
    import SimpleITK as sitk

    v, k, truth = mr
    box = ",".join(str(c) for c in mask_bbox(truth))
    png, nii = tmp_path / "m.png", tmp_path / "m.nii"
    assert _segment(str(mr_dicom_dir), "--slice", str(k), "--box", box, "--out", str(png)) == 0
    shown = cv2.imread(str(png), cv2.IMREAD_UNCHANGED) > 0
    d = dice(shown, truth)
    print(f"segment --box on MR: Dice {d:.3f}")
    assert d >= 0.75
    # The NIfTI is on the series' voxel grid: the raw array's rows (posterior first).
    assert _segment(str(mr_dicom_dir), "--slice", str(k), "--box", box, "--out", str(nii)) == 0
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(nii))) > 0
    np.testing.assert_array_equal(arr[k], display_frame(v).to_array(shown))
    assert dice(arr[k], display_frame(v).to_array(truth)) == pytest.approx(d)


def test_eval_seg_compares_in_the_display_frame(mr, mr_dicom_dir, shared_data, tmp_path, capsys):
    from app.cli.main import main

    data = tmp_path / "seg.json"
    data.write_text(json.dumps([{"image": str(mr_dicom_dir), "label": str(shared_data / "mr-brain-brain1" /
                                                                            "brain1_label.nrrd")}]))
    out = tmp_path / "eval"
    assert main(["eval", str(data), "--seg", "--profile", "tiny", "--out", str(out)]) == 0
    (item,) = json.loads((out / "eval.json").read_text())["items"]
    _, k, truth = mr
    assert item["slice_index"] == k and item["box"] == list(mask_bbox(truth))
    assert item["dice"] >= 0.75
