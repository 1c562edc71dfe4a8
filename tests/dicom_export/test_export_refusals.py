"""What the export refuses, in one line naming the run and the reason: it never invents a study,
a geometry or UIDs for a source that is not DICOM, is gone, or has changed."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pydicom
import pytest

from app.dicom_export import ExportError, ExportKind, build_run_objects
from app.study.loader import load

pytestmark = pytest.mark.slow


def _edit(folder, **input_fields):
    data = json.loads((folder / "run.json").read_text())
    data["input"].update(input_fields)
    (folder / "run.json").write_text(json.dumps(data))
    return data["run_id"]


def _refused(folder, kinds, pattern):
    with pytest.raises(ExportError) as info:
        build_run_objects(folder, kinds)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    return message


def test_a_nifti_run_is_refused_for_every_kind(ct_run, copy_run, tmp_path):
    import SimpleITK as sitk

    # A NIfTI file loads without study or series UIDs: a run on it records none.
    nii = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((1, 8, 8), np.int16)), str(nii))
    volume = load([nii]).volumes[0]
    assert (volume.study_uid, volume.series_uid) == ("", "")
    folder = copy_run(ct_run)
    rid = _edit(folder, study_uid=volume.study_uid, series_uid=volume.series_uid, source_path=str(nii))
    for kinds in ({ExportKind.SEG}, {ExportKind.SR}, {ExportKind.PDF}, set(ExportKind)):
        message = _refused(folder, kinds, r"its source \(slice\.nii\.gz\) is not DICOM")
        assert message.startswith(f"run {rid}: ")


def test_a_vanished_source_is_refused(ct_run, copy_run, tmp_path):
    folder = copy_run(ct_run)
    _edit(folder, source_path=str(tmp_path / "gone" / "IM0034.dcm"))
    _refused(folder, set(ExportKind), r"the source .*IM0034\.dcm is no longer available")


def test_a_changed_source_is_refused(ct_run, copy_run, tmp_path):
    changed = tmp_path / "changed"
    changed.mkdir()
    ds = pydicom.dcmread(ct_run.record.input.source_path)
    arr = ds.pixel_array.copy()
    arr[0, 0] += 1
    ds.PixelData = arr.tobytes()
    ds.save_as(changed / "IM0034.dcm")
    folder = copy_run(ct_run)
    _edit(folder, source_path=str(changed / "IM0034.dcm"))
    _refused(folder, {ExportKind.SEG}, r"no longer match the run's recorded sha256")
    # The unchanged file in another place is the same instance: accepted (the hash proves it).
    shutil.copy(ct_run.record.input.source_path, changed / "IM0034.dcm")
    assert build_run_objects(folder, {ExportKind.SEG}).datasets


def test_an_unfinished_run_is_refused(ct_run, copy_run):
    folder = copy_run(ct_run)
    data = json.loads((folder / "run.json").read_text())
    data["status"] = "cancelled"
    (folder / "run.json").write_text(json.dumps(data))
    _refused(folder, set(ExportKind), r"is cancelled: only a completed run is exported")


def test_an_unknown_run_id_is_refused():
    _refused("no-such-run", set(ExportKind), r"no run no-such-run in the audit trail")


def test_a_source_highdicom_rejects_is_one_line(ct_run, copy_run, tmp_path):
    """A source instance without the geometry a SEG needs (no frame of reference): one line, no traceback."""
    broken = tmp_path / "broken"
    broken.mkdir()
    ds = pydicom.dcmread(ct_run.record.input.source_path)
    del ds.FrameOfReferenceUID
    ds.save_as(broken / "IM0034.dcm")
    folder = copy_run(ct_run)
    rid = _edit(folder, source_path=str(broken / "IM0034.dcm"))
    message = _refused(folder, {ExportKind.SEG}, r"the SEG cannot be built on the source IM0034\.dcm: ")
    assert message.startswith(f"run {rid}: ")
