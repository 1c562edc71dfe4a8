"""Store (STOW-RS and C-STORE) to a real Orthanc: what the node holds afterwards is what was sent."""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from app.pacs.client import client_for
from app.pacs.models import QueryFilter
from app.pacs.nodes import parse_node_arg
from tests.pacs.conftest import new_instances_from


def _client(orthanc, protocol: str):
    s = orthanc.server
    return client_for(parse_node_arg(s.dicomweb_url, None) if protocol == "dicomweb" else parse_node_arg(None, s.dimse_arg))


def _encapsulated_pdf(like: Dataset) -> Dataset:
    """A minimal Encapsulated PDF instance in the same study (pydicom only)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SOPInstanceUID = generate_uid()
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
               "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ds, kw, like.get(kw, ""))
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber, ds.Modality = generate_uid(), 900, 1, "DOC"
    ds.ConversionType, ds.BurnedInAnnotation, ds.DocumentTitle = "WSD", "NO", "CARE evidence report"
    ds.ContentDate = ds.AcquisitionDateTime = dt.date.today().strftime("%Y%m%d")
    ds.ContentTime = "000000"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n% CARE test document\n%%EOF\n"
    return ds


@pytest.fixture()
def to_store(orthanc, ct_dicom_dir):
    """3 CT slices as a new series of a new study, plus a PDF in that study; deleted afterwards."""
    study = generate_uid()
    images = new_instances_from(sorted(ct_dicom_dir.glob("*.dcm"))[20:23], study_uid=study)
    datasets = images + [_encapsulated_pdf(images[0])]
    yield study, datasets
    orthanc.server.delete_study(study)


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_store_then_fetch_back_what_was_sent(orthanc, to_store, protocol):
    study, datasets = to_store
    result = _client(orthanc, protocol).store(datasets)
    assert result.failed == [] and sorted(result.stored) == sorted(str(d.SOPInstanceUID) for d in datasets)
    for sent in datasets:
        raw = orthanc.server.instance_file(str(sent.SOPInstanceUID))
        assert raw[128:132] == b"DICM", (sent.SOPClassUID, raw[:300])
        held = pydicom.dcmread(io.BytesIO(raw))
        assert (held.StudyInstanceUID, held.SeriesInstanceUID, held.SOPClassUID) == (
            sent.StudyInstanceUID, sent.SeriesInstanceUID, sent.SOPClassUID)
        if "PixelData" in sent:
            np.testing.assert_array_equal(held.pixel_array, sent.pixel_array)
        else:
            assert held.EncapsulatedDocument.rstrip(b"\0") == sent.EncapsulatedDocument.rstrip(b"\0")
    (match,) = _client(orthanc, protocol).find_studies(QueryFilter(patient_id="LUNG1", modality="DOC"))
    assert match.study_uid == study and set(match.modalities) == {"CT", "DOC"} and match.n_instances == 4


def test_c_store_of_a_dataset_built_in_memory_without_file_meta(orthanc, to_store):
    _study, datasets = to_store
    ds = datasets[0]
    del ds.file_meta  # e.g. straight from a builder: C-STORE still encodes it
    result = _client(orthanc, "dimse").store([ds])
    assert result.stored == [str(ds.SOPInstanceUID)]
