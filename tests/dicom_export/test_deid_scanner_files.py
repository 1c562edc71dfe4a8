"""``pacs store --file ... --deidentify`` on scanner images: the retain list of
app/dicom_export/retain.py on real files of several vendors and IODs (pydicom's test files:
CT, MR, US with calibration regions, Enhanced MR, Enhanced CT with functional groups, a Siemens
MR with overlays and private tags; the shared chest CT series), each given first a set of
identifiers that the REMOVE/EMPTY lists for CARE's own objects do not name.

After de-identification: no element outside the retain list anywhere in the tree, none of the
source's names, IDs, dates, free text, UIDs, overlay or curve bytes in the written file, no
dciodvfy error the source did not have, and the app loads it as it loads the source (pixels,
geometry, windows).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from app.dicom_export.deidentify import KEEP_UID, UidMap, deidentify_file_copy
from app.dicom_export.retain import (CODE, DATE_DUMMY, DUMMY_IF_PRESENT, EMPTY_IF_PRESENT, RETAIN, STUDY_KEYS,
                                     TEXT_DUMMY)
from tests.dicom_export.conftest import dciodvfy

ADDED = {"PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
         "LongitudinalTemporalInformationModified"}
ALLOWED = RETAIN | CODE | EMPTY_IF_PRESENT | DUMMY_IF_PRESENT | set(STUDY_KEYS) | ADDED
TEXT_VRS = ("PN", "LO", "SH", "ST", "LT", "UT", "UC", "DA", "TM", "DT", "AS", "AE")
PYDICOM_FILES = ["CT_small.dcm", "MR_small.dcm", "OBXXXX1A.dcm", "US1_UNCR.dcm", "emri_small.dcm",
                 "eCT_Supplemental.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "color3d_jpeg_baseline.dcm", "JPEG2000.dcm",
                 "SC_rgb.dcm", "mlut_18.dcm", "vlut_04.dcm", "rtdose.dcm"]
OVERLAY_BITS = b"OVERLAYBITSMARK!" * 8
CURVE_BYTES = b"CURVEDATAMARK..."
# Identifying attributes none of deidentify.py's lists name (they reached the node before).
UNLISTED = {"RequestedProcedureID": "RPID7731", "PerformedStationName": "PSTATIONX9", "DetectorID": "DETID55421",
            "DeviceSerialNumber": "DEVSN998877", "InstitutionName": "ST MARKERS HOSPITAL",
            "StationName": "STATIONMARK7", "ImageComments": "seen by Dr MARKER", "SeriesDescription": "SERIESMARK",
            "AcquisitionDateTime": "20190304101112", "AcquisitionDate": "20190304", "SeriesTime": "101112",
            "PerformedProcedureStepStartDate": "20190305", "StudyComments": "STUDYCOMMENTMARK",
            "RequestingService": "REQSERVICEMARK", "DeviceUID": "1.2.3.4.55555.1"}


def _with_identifiers(ds: Dataset) -> Dataset:
    for kw, value in UNLISTED.items():
        setattr(ds, kw, value)
    step = Dataset()
    step.ScheduledPerformingPhysicianName, step.ScheduledStationName = "SCHEDULED^DOCTORQ", "SCHEDSTATIONMARK"
    step.ScheduledProcedureStepStartDate = "20190306"
    ds.ScheduledProcedureStepSequence = [step]
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID = "NESTEDMRN4411", "NESTEDISSUER"
    ref = Dataset()  # a kept sequence: what the retain list does not name goes inside it too
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = ds.SOPClassUID, generate_uid()
    ref.OtherPatientIDsSequence = [other]
    ds.ReferencedImageSequence = [ref]
    ds.private_block(0x0011, "MARK VENDOR", create=True).add_new(0x10, "LO", "PRIVATEMARK")
    ds.add_new(0x50000010, "US", 2)  # a retired curve (50xx), with a label and data
    ds.add_new(0x50002500, "LO", "CURVELABELMARK")
    ds.add_new(0x50003000, "OB", CURVE_BYTES)
    rows, cols = int(ds.Rows), int(ds.Columns)
    if (0x6002, 0x3000) not in ds:  # an overlay plane whose bits spell a marker
        ds.add_new(0x60020010, "US", rows)
        ds.add_new(0x60020011, "US", cols)
        ds.add_new(0x60020040, "CS", "G")
        ds.add_new(0x60020050, "SS", [1, 1])
        ds.add_new(0x60020100, "US", 1)
        ds.add_new(0x60020102, "US", 0)
        ds.add_new(0x60020022, "LO", "OVERLAYDESCMARK")
        need = (rows * cols + 7) // 8
        ds.add_new(0x60023000, "OB", (OVERLAY_BITS * (need // len(OVERLAY_BITS) + 1))[:need + need % 2])
    for item in ds.get("PerFrameFunctionalGroupsSequence") or []:
        content = item.FrameContentSequence[0] if "FrameContentSequence" in item else None
        if content is None:
            content = Dataset()
            item.FrameContentSequence = [content]
        content.FrameAcquisitionDateTime, content.FrameComments = "20180102030405", "FRAMECOMMENTMARK"
    if "SharedFunctionalGroupsSequence" in ds:
        ds.SharedFunctionalGroupsSequence[0].OtherPatientIDsSequence = [other]
    ds.file_meta.SourceApplicationEntityTitle = "SRCAEMARK"
    return ds


def _secrets(ds: Dataset) -> tuple[set[str], set[bytes]]:
    """(every text / date / name value of 4+ characters outside the retain list, every instance
    UID) of ``ds`` and its file meta, nested items included. The writer's own name (pydicom
    writes it again) is not the source's."""
    texts, uids, kept = set(), set(), []
    for elem in [*ds.file_meta, *ds.iterall()]:
        values = [] if elem.value in (None, "") else elem.value if elem.VM > 1 else [elem.value]
        if elem.VR == "UI":
            if elem.keyword not in KEEP_UID:
                uids |= {str(u).encode() for u in values if not str(u).startswith("1.2.840.10008.")}
        elif elem.keyword in RETAIN or elem.keyword in CODE:
            kept += [str(v) for v in values] if elem.VR not in ("SQ", "OB", "OW", "OF", "OD", "OL", "UN") else []
        elif elem.VR in TEXT_VRS and elem.keyword != "ImplementationVersionName":
            texts |= {str(v).strip() for v in values if len(str(v).strip()) >= 4}
    # A value a kept attribute holds too (LUTLabel RCBF, FrameType RCBF) says nothing new; a
    # short number ("0010") turns up in new UIDs and pixels by chance (the parsed check has it).
    texts = {t for t in texts if not any(t in k for k in kept)}
    return {t for t in texts if len(t) >= 6 or not t.replace(".", "").isdigit()}, uids


def _parsed_secrets(source: Dataset) -> set[str]:
    return {str(e.value).strip() for e in source.iterall()
            if e.VR in TEXT_VRS and e.keyword not in RETAIN | CODE and e.value not in (None, "") and e.VM == 1
            and len(str(e.value).strip()) >= 2}
    return texts, uids


def _walk(ds: Dataset, path: str = ""):
    for elem in ds:
        yield f"{path}{elem.keyword or elem.tag}", elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value or []):
                yield from _walk(item, f"{path}{elem.keyword}[{i}].")


def _deidentified(source: Path, out: Path, uids: UidMap) -> tuple[Path, Path]:
    """(the source with identifiers added, its de-identified copy) written under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    identified = out / f"identified-{source.name}"
    _with_identifiers(pydicom.dcmread(source)).save_as(identified, enforce_file_format=True)
    ds = pydicom.dcmread(identified)
    deidentify_file_copy(ds, uids)
    deid = out / f"deid-{source.name}"
    ds.save_as(deid, enforce_file_format=True)
    return identified, deid


def _pydicom_file(name: str) -> Path:
    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed (pydicom-data)")
    return Path(path)


def _check_contents(identified: Path, deid: Path, uids: UidMap) -> None:
    source = pydicom.dcmread(identified)
    ds = pydicom.dcmread(deid)
    stray = [(where, e.keyword or str(e.tag)) for where, e in _walk(ds) if e.tag.is_private or e.keyword not in ALLOWED]
    assert not stray, stray
    for kw in UNLISTED:
        assert all(e.keyword != kw for _, e in _walk(ds)) or kw in DUMMY_IF_PRESENT, kw
    for where, e in _walk(ds):
        if e.keyword in EMPTY_IF_PRESENT:
            assert e.value in (None, "") or (e.VR == "SQ" and len(e.value) == 0), where
        elif e.keyword in DUMMY_IF_PRESENT:
            assert e.value == DATE_DUMMY.get(e.VR, TEXT_DUMMY), where
    assert set(ds.file_meta.keys()) <= {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012,
                                        0x00020013}
    raw = written = deid.read_bytes()
    # The new UIDs are random digits: a source's time (185434) turns up in them by chance.
    for u in {str(e.value) for e in [*ds.file_meta, *ds.iterall()] if e.VR == "UI" and e.VM == 1 and e.value}:
        written = written.replace(u.encode(), b"")
    texts, source_uids = _secrets(source)
    assert {"RPID7731", "SCHEDULED^DOCTORQ", "NESTEDMRN4411", "SRCAEMARK", "CURVELABELMARK"} <= texts
    leaked = sorted(t for t in texts if t.encode() in written)
    assert not leaked, leaked
    # Every value the new file holds outside the retain list (pseudonyms, dummies, the method):
    # none is a value of the source's, however short.
    parsed = _parsed_secrets(source)
    mine = [(w, str(e.value)) for w, e in _walk(ds) if e.keyword not in RETAIN | CODE and e.VR in TEXT_VRS
            and str(e.value).strip() in parsed]
    assert not mine, mine
    assert not [u for u in source_uids if u in raw]
    assert OVERLAY_BITS[:16] not in raw and CURVE_BYTES not in raw and b"PRIVATEMARK" not in raw
    # The references follow the referenced instances to their new UIDs (one map per call).
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == uids(
        source.ReferencedImageSequence[0].ReferencedSOPInstanceUID)
    assert (ds.PatientName, ds.PatientID) == (uids.dummies["PatientName"], uids.dummies["PatientID"])
    assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "REMOVED"
    method = list(ds.DeidentificationMethod)
    assert method[0] == "DICOM PS3.15 Basic Application Confidentiality Profile" and not any(
        "Option" in m for m in method) and any("Retain list" in m for m in method)
    assert [c.CodeValue for c in ds.DeidentificationMethodCodeSequence] == ["113100"]


def _check_valid(original: Path, deid: Path) -> None:
    before, _ = dciodvfy(original)
    after, _ = dciodvfy(deid)
    assert sorted(set(after) - set(before)) == []


def _check_loads_alike(identified: list[Path], deid: list[Path]) -> None:
    from app.study.loader import load

    a, b = load(identified), load(deid)
    assert not a.errors and not b.errors, (a.errors, b.errors)
    assert len(a.volumes) == len(b.volumes) == 1
    va, vb = a.volumes[0], b.volumes[0]
    np.testing.assert_array_equal(va.array, vb.array)
    assert va.array.dtype == vb.array.dtype
    assert va.spacing == vb.spacing and va.origin == vb.origin and va.spacing_source == vb.spacing_source
    np.testing.assert_array_equal(va.direction, vb.direction)
    assert (va.window.center, va.window.width) == (vb.window.center, vb.window.width)
    assert [(w.center, w.width) for w in va.voi_windows] == [(w.center, w.width) for w in vb.voi_windows]
    assert (va.modality, va.invert_display, va.projection, va.patient_orientation, va.temporal, va.frame_rate) == (
        vb.modality, vb.invert_display, vb.projection, vb.patient_orientation, vb.temporal, vb.frame_rate)
    assert not vb.dicom_overlays  # dropped: an overlay can show text


@pytest.mark.parametrize("name", PYDICOM_FILES)
def test_a_scanner_file_keeps_only_the_retain_list(name, tmp_path):
    source = _pydicom_file(name)
    uids = UidMap()
    identified, deid = _deidentified(source, tmp_path, uids)
    _check_contents(identified, deid, uids)
    _check_valid(source, deid)
    _check_loads_alike([identified], [deid])


def test_the_shared_ct_series_loads_as_before_under_one_new_study(ct_dicom_dir, tmp_path):
    sources = sorted(ct_dicom_dir.glob("*.dcm"))
    uids = UidMap()
    pairs = [_deidentified(src, tmp_path, uids) for src in sources]
    for identified, deid in pairs[:3]:
        _check_contents(identified, deid, uids)
    _check_valid(sources[0], pairs[0][1])
    held = [pydicom.dcmread(d, stop_before_pixels=True) for _, d in pairs]
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "PatientID"):
        assert len({str(ds.get(kw)) for ds in held}) == 1, kw
    _check_loads_alike([i for i, _ in pairs], [d for _, d in pairs])


def test_an_overlay_in_the_pixel_data_bits_is_refused(tmp_path):
    ds = pydicom.dcmread(_pydicom_file("CT_small.dcm"))
    ds.add_new(0x60000010, "US", int(ds.Rows))  # OverlayRows without OverlayData: in bit 12-15
    ds.add_new(0x60000011, "US", int(ds.Columns))
    ds.add_new(0x60000102, "US", 12)
    with pytest.raises(ValueError, match="overlay 6000 lies in the pixel data's unused bits"):
        deidentify_file_copy(ds, UidMap())


@pytest.mark.parametrize("name", ["liver.dcm", "test-SR.dcm"])
def test_a_file_that_is_not_an_image_is_refused(name):
    """The retain list is an image's: a SEG or SR sent through it would lose its segments or content."""
    ds = pydicom.dcmread(_pydicom_file(name))
    with pytest.raises(ValueError, match=r"not an image \(.*\): --deidentify keeps only the attributes an image"):
        deidentify_file_copy(ds, UidMap())
