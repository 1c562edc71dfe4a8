"""Echo and study/series queries against a real Orthanc, over DICOMweb and DIMSE: the same answers."""
from __future__ import annotations

import datetime as dt

import pytest

from app.pacs.client import client_for
from app.pacs.models import QueryFilter
from app.pacs.nodes import parse_node_arg
from tests.pacs.conftest import SMALL_N, SMALL_SERIES_UID

PROTOCOLS = ("dicomweb", "dimse")


def _client(orthanc, protocol: str):
    s = orthanc.server
    return client_for(parse_node_arg(s.dicomweb_url, None) if protocol == "dicomweb" else parse_node_arg(None, s.dimse_arg))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_echo(orthanc, protocol):
    result = _client(orthanc, protocol).echo()
    assert result.ok, result.message
    assert orthanc.server.dimse_arg in result.message or orthanc.server.dicomweb_url in result.message


QUERIES = {
    "everything": (QueryFilter(), {"ct", "mr", "small"}),
    "patient id": (QueryFilter(patient_id="LUNG1"), {"ct"}),
    "patient id wildcard": (QueryFilter(patient_id="*1"), {"ct", "mr", "small"}),
    "name wildcard": (QueryFilter(patient_name="BRAIN*"), {"mr"}),
    "name exact, other case": (QueryFilter(patient_name="lung1^research"), {"ct"}),
    "name with ? and ^": (QueryFilter(patient_name="OTHER?^T*"), {"small"}),
    "accession": (QueryFilter(accession="ACC-42"), {"small"}),
    "date range": (QueryFilter(date_from=dt.date(2021, 1, 1), date_to=dt.date(2021, 12, 31)), {"small"}),
    "open-ended date": (QueryFilter(date_to=dt.date(2020, 6, 30)), {"ct", "mr"}),
    "one day": (QueryFilter(date_from=dt.date(2020, 1, 1), date_to=dt.date(2020, 1, 1)), {"ct", "mr"}),
    "modality": (QueryFilter(modality="MR"), {"mr", "small"}),
    "modality and name": (QueryFilter(modality="MR", patient_name="OTHER*"), {"small"}),
    "nothing": (QueryFilter(patient_id="NOBODY"), set()),
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_queries_match_and_agree_between_protocols(orthanc, name):
    query, expected = QUERIES[name]
    uid_of = {"ct": orthanc.ct_study, "mr": orthanc.mr_study, "small": orthanc.small_study}
    answers = {p: sorted(_client(orthanc, p).find_studies(query), key=lambda s: s.study_uid) for p in PROTOCOLS}
    assert {s.study_uid for s in answers["dicomweb"]} == {uid_of[k] for k in expected}
    assert answers["dicomweb"] == answers["dimse"]  # every field, not just the UIDs


def test_study_fields(orthanc):
    (small,) = _client(orthanc, "dimse").find_studies(QueryFilter(accession="ACC-42"))
    assert (small.patient_id, small.patient_name, small.study_date, small.modalities, small.description) == (
        "OTHER1", "OTHER1^TEST", "20210615", ("MR",), "small MR study")
    assert (small.n_series, small.n_instances) == (1, SMALL_N)
    (ct,) = _client(orthanc, "dicomweb").find_studies(QueryFilter(patient_id="LUNG1"))
    assert (ct.modalities, ct.n_instances) == (("CT",), 48)


def test_series_and_instances_agree_between_protocols(orthanc):
    web, dimse = _client(orthanc, "dicomweb"), _client(orthanc, "dimse")
    series = web.find_series(orthanc.small_study)
    assert series == dimse.find_series(orthanc.small_study)
    assert [(s.series_uid, s.modality, s.n_instances) for s in series] == [(SMALL_SERIES_UID, "MR", SMALL_N)]
    refs = web.find_instances(orthanc.small_study)
    assert refs == dimse.find_instances(orthanc.small_study)
    assert len(refs) == SMALL_N and len({r.sop_uid for r in refs}) == SMALL_N


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_first_instance_for_a_thumbnail(orthanc, protocol, mr_dicom_dir):
    import pydicom

    ds = _client(orthanc, protocol).first_instance(orthanc.mr_study, _client(orthanc, protocol).find_series(
        orthanc.mr_study)[0].series_uid)
    first = min((pydicom.dcmread(p) for p in mr_dicom_dir.glob("*.dcm")), key=lambda d: int(d.InstanceNumber))
    assert ds.SOPInstanceUID == first.SOPInstanceUID
    assert (ds.pixel_array == first.pixel_array).all()
