"""DICOM SEG read back onto the series it segments: masks compared pixel for pixel with the
label they were built from, in the display frame the viewer draws, for SEGs in the CT's own
grid, in another orientation, FRACTIONAL, referenced by instance only; and hostile SEGs."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from app.study.display_frame import display_frame
from app.study.loader import load
from app.study.overlays import OverlayStack
from app.study.reformat import Plane, slice_geometry
from tests.study.seg_factory import axial_seg, coarse_seg, ct_sources, sagittal_seg


@pytest.fixture(scope="module")
def label(shared_data) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0


@pytest.fixture(scope="module")
def sources(ct_dicom_dir):
    return ct_sources(ct_dicom_dir)


def _write(ds, folder: Path, name: str = "seg.dcm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    ds.save_as(path)
    return path


def _load_with(ct_dicom_dir: Path, seg_path: Path):
    result = load([ct_dicom_dir, seg_path])
    assert len(result.volumes) == 1, result.errors
    return result


def test_binary_seg_lands_on_the_tumour_pixels_of_the_displayed_slice(tmp_path, ct_dicom_dir, sources, label, ct_tumour):
    seg_path = _write(axial_seg(sources, label, color="red"), tmp_path)
    result = _load_with(ct_dicom_dir, seg_path)
    assert result.errors == []
    (overlay,) = result.segmentations
    volume = result.volumes[0]
    assert overlay.target is volume and overlay.placement == "geometry"
    (segment,) = overlay.segments
    assert segment.label == "Tumour" and segment.color == (255, 0, 0)
    assert np.array_equal(segment.mask, label)
    # What the viewer draws: the 3-D layer cut by the acquisition-plane view, against the
    # label cut into the same display frame.
    stack = OverlayStack(volume.array.shape[:3], display_frame(volume).shape)
    stack.add(segment.label, segment.mask, segment.color)
    g = slice_geometry(volume, Plane.AXIAL)
    ((_, shown),) = stack.masks_for(g.extract, 0, ct_tumour.slice_index)
    expected = display_frame(volume).from_array(ct_tumour.mask)
    assert shown.any() and np.array_equal(shown, expected)


def test_two_segments_keep_their_labels_and_colours(tmp_path, ct_dicom_dir, sources, label):
    seg_path = _write(axial_seg(sources, label, color="red", segments=2), tmp_path)
    (overlay,) = _load_with(ct_dicom_dir, seg_path).segmentations
    first, second = overlay.segments
    assert (first.label, second.label) == ("Tumour", "Shifted copy")
    assert second.color == (0, 0, 255)
    assert np.array_equal(second.mask, np.roll(label, 40, axis=2))


def test_seg_in_another_orientation_lands_on_the_same_voxels(tmp_path, ct_dicom_dir, sources, label, ct_volume):
    ds = sagittal_seg(sources, label, ct_volume)
    assert [float(v) for v in ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient] == [0, 1, 0, 0, 0, -1]
    seg_path = _write(ds, tmp_path)
    (overlay,) = _load_with(ct_dicom_dir, seg_path).segmentations
    (segment,) = overlay.segments
    assert overlay.placement == "geometry" and segment.label == "Tumour (sagittal)"
    assert np.array_equal(segment.mask, label)


def test_seg_at_another_pixel_spacing_covers_its_voxel_blocks(tmp_path, ct_dicom_dir, sources, label, ct_volume):
    coarse = label[:, ::2, ::2]  # one SEG pixel per 2x2 block of CT voxels
    seg_path = _write(coarse_seg(sources, coarse, ct_volume), tmp_path)
    (overlay,) = _load_with(ct_dicom_dir, seg_path).segmentations
    expected = np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2)
    assert np.array_equal(overlay.segments[0].mask, expected)


def test_fractional_seg_is_shown_where_at_least_half(tmp_path, ct_dicom_dir, sources, label):
    fraction = np.zeros(label.shape, np.float32)
    fraction[label] = 0.8
    weak = np.roll(label, 60, axis=2) & ~label
    fraction[weak] = 0.3  # below half: not shown
    seg_path = _write(axial_seg(sources, label, fractional=fraction), tmp_path)
    (overlay,) = _load_with(ct_dicom_dir, seg_path).segmentations
    assert overlay.segmentation_type == "FRACTIONAL"
    (segment,) = overlay.segments
    assert np.array_equal(segment.mask, label)
    assert "0.5" in segment.note


def test_frames_without_position_are_placed_by_referenced_instance(tmp_path, ct_dicom_dir, sources, label):
    ds = axial_seg(sources, label)
    for item in ds.PerFrameFunctionalGroupsSequence:
        del item.PlanePositionSequence
    seg_path = _write(ds, tmp_path)
    (overlay,) = _load_with(ct_dicom_dir, seg_path).segmentations
    assert overlay.placement == "referenced instances"
    assert np.array_equal(overlay.segments[0].mask, label)


def test_a_folder_holding_seg_and_series_opens_with_the_overlay(tmp_path, ct_dicom_dir, sources, label):
    study = tmp_path / "study"
    shutil.copytree(ct_dicom_dir, study / "ct")
    _write(axial_seg(sources, label), study / "seg", "1.2.3.4")  # a UID-like name, as PACS exports use
    result = load([study])
    assert result.errors == [] and len(result.volumes) == 1
    assert np.array_equal(result.segmentations[0].segments[0].mask, label)


# ------------------------------------------------------------------------------ hostile --
def test_seg_of_a_series_that_is_not_open_shows_as_its_own_image_saying_why(tmp_path, mr_dicom_dir, sources, label):
    seg_path = _write(axial_seg(sources, label), tmp_path)
    result = load([mr_dicom_dir, seg_path])
    assert result.errors == [] and result.segmentations == []
    mr, seg = result.volumes
    assert mr.modality == "MR" and seg.modality == "SEG" and mr.warnings == []
    (warning,) = seg.warnings
    assert "not open" in warning and sources[0].SeriesInstanceUID in warning
    # Read directly against the wrong series: one line naming what is missing.
    from app.study.dicom.seg_reader import read_seg

    error = read_seg(str(seg_path), [mr])
    assert error.path == str(seg_path)
    assert error.reason.startswith("DICOM SEG not shown") and sources[0].SeriesInstanceUID in error.reason


def test_truncated_seg_is_an_error_and_the_series_still_opens(tmp_path, ct_dicom_dir, sources, label):
    seg_path = _write(axial_seg(sources, label), tmp_path)
    data = seg_path.read_bytes()
    seg_path.write_bytes(data[: len(data) - 20000])
    result = load([ct_dicom_dir, seg_path])
    assert len(result.volumes) == 1 and result.segmentations == []
    assert [e.path for e in result.errors] == [str(seg_path)]
    assert "truncated" in result.errors[0].reason


def test_huge_frame_count_is_refused_before_allocating(tmp_path, ct_dicom_dir, sources, label):
    seg_path = _write(axial_seg(sources, label), tmp_path)
    ds = pydicom.dcmread(seg_path)
    ds.NumberOfFrames = 2_000_000_000
    ds.save_as(seg_path)
    result = load([ct_dicom_dir, seg_path])
    assert len(result.volumes) == 1 and result.segmentations == []
    assert "limit" in result.errors[0].reason


def test_frame_count_not_matching_the_frame_descriptions(tmp_path, ct_dicom_dir, sources, label):
    from app.study.dicom.seg_reader import read_seg

    seg_path = _write(axial_seg(sources, label), tmp_path)
    ds = pydicom.dcmread(seg_path)
    ds.PerFrameFunctionalGroupsSequence = ds.PerFrameFunctionalGroupsSequence[:1]
    ds.save_as(seg_path)
    volume = load([ct_dicom_dir]).volumes[0]
    error = read_seg(str(seg_path), [volume])
    assert "per-frame descriptions" in error.reason


def test_segments_are_kept_as_their_bounding_box(tmp_path, ct_dicom_dir, sources, label):
    seg_path = _write(axial_seg(sources, label), tmp_path)
    (segment,) = _load_with(ct_dicom_dir, seg_path).segmentations[0].segments
    zs, ys, xs = np.nonzero(label)
    assert segment.offset == (zs.min(), ys.min(), xs.min())
    assert segment.local.shape == (np.ptp(zs) + 1, np.ptp(ys) + 1, np.ptp(xs) + 1)
    assert segment.slices == sorted(set(zs.tolist())) and segment.voxels == int(label.sum())


def test_read_seg_itself_refuses_an_absurd_frame_count(tmp_path, ct_volume, sources, label):
    from app.study.dicom.seg_reader import read_seg

    seg_path = _write(axial_seg(sources, label), tmp_path)
    ds = pydicom.dcmread(seg_path)
    ds.NumberOfFrames = 2_000_000_000
    ds.save_as(seg_path)
    error = read_seg(str(seg_path), [ct_volume])
    assert "limit" in error.reason and error.reason.startswith("DICOM SEG not shown")


def test_structured_reports_are_listed_as_documents_not_errors(tmp_path, ct_dicom_dir, sources):
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    ds.SOPInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyInstanceUID, ds.Modality = sources[0].StudyInstanceUID, "SR"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "report.dcm"
    ds.save_as(path, enforce_file_format=True)
    result = load([ct_dicom_dir, path])
    assert result.errors == [] and len(result.volumes) == 1
    (doc,) = result.documents
    assert (doc.path, doc.sop_class_uid, doc.study_uid, doc.modality) == (str(path), ds.SOPClassUID, ds.StudyInstanceUID, "SR")
    # Not one CARE wrote: the viewer's reader says so and lists no past run.
    from app.ui.audit.pacs_runs import read_care_srs

    found, skipped = read_care_srs([doc.path])
    assert found == [] and "not a CARE structured report" in skipped[0]


def test_frames_outside_the_series_are_said_not_drawn(tmp_path, ct_dicom_dir, sources, label):
    ds = axial_seg(sources, label)
    for item in ds.PerFrameFunctionalGroupsSequence:
        pos = item.PlanePositionSequence[0].ImagePositionPatient
        item.PlanePositionSequence[0].ImagePositionPatient = [pos[0], pos[1], float(pos[2]) + 1000.0]
    seg_path = _write(ds, tmp_path)
    (overlay,) = _load_with(ct_dicom_dir, seg_path).segmentations
    assert overlay.segments[0].voxels == 0
    assert any("outside" in w and "nothing is drawn" in w for w in overlay.warnings)
