"""A PACS at its worst: down, wrong AE title, refusing the association, HTTP 401/403/404/500.
Every failure is one line that names the node and the reason."""
from __future__ import annotations

import pytest

from app.devtools.orthanc import OrthancServer
from app.pacs.client import client_for
from app.pacs.errors import PacsError
from app.pacs.models import QueryFilter
from app.pacs.nodes import PacsAuth, parse_node_arg
from tests.pacs.conftest import require_orthanc


def _one_line_naming(message: str, node_label: str) -> None:
    assert "\n" not in message
    assert message.startswith(f"PACS node {node_label}: "), message


@pytest.fixture(scope="module")
def auth_orthanc(small_files):
    require_orthanc()
    with OrthancServer(aet="SECURE", users={"reader": "correct horse"}) as server:
        server.upload(small_files[:1])
        yield server


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_node_down(closed_port, protocol):
    node = (parse_node_arg(f"http://127.0.0.1:{closed_port}/dicom-web", None) if protocol == "dicomweb"
            else parse_node_arg(None, f"ORTHANC@127.0.0.1:{closed_port}"))
    client = client_for(node)
    echo = client.echo()
    assert not echo.ok
    _one_line_naming(echo.message, node.label)
    with pytest.raises(PacsError) as err:
        client.find_studies(QueryFilter())
    _one_line_naming(str(err.value), node.label)
    assert "cannot connect" in str(err.value) and "running" in str(err.value)


def test_wrong_called_ae_title(orthanc):
    node = parse_node_arg(None, f"NOTORTHANC@127.0.0.1:{orthanc.server.dicom_port}")
    with pytest.raises(PacsError) as err:
        client_for(node).find_studies(QueryFilter())
    _one_line_naming(str(err.value), node.label)
    assert "called AE title 'NOTORTHANC' not recognised" in str(err.value)


def test_refused_association(closed_port):
    """An archive that only talks to AE titles it knows rejects ours."""
    from pynetdicom import AE
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, Verification

    scp = AE(ae_title="STRICT")
    scp.add_supported_context(Verification)
    scp.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    scp.require_calling_aet = ["TRUSTED"]
    server = scp.start_server(("127.0.0.1", closed_port), block=False)
    try:
        node = parse_node_arg(None, f"STRICT@127.0.0.1:{closed_port}")
        echo = client_for(node).echo()
        assert not echo.ok
        _one_line_naming(echo.message, node.label)
        assert "association rejected" in echo.message and "calling AE title" in echo.message
        trusted = parse_node_arg(None, f"STRICT@127.0.0.1:{closed_port}", calling_ae="TRUSTED")
        assert client_for(trusted).echo().ok  # the same server accepts the AE title it knows
    finally:
        server.shutdown()


def test_http_401_without_or_with_a_wrong_password_and_success_with_the_right_one(auth_orthanc, monkeypatch):
    url = auth_orthanc.dicomweb_url
    monkeypatch.setenv("TEST_PACS_PW", "wrong")
    for node in (parse_node_arg(url, None), parse_node_arg(url, None, auth=PacsAuth("reader", "TEST_PACS_PW"))):
        with pytest.raises(PacsError) as err:
            client_for(node).find_studies(QueryFilter())
        _one_line_naming(str(err.value), node.label)
        assert "authentication failed (HTTP 401)" in str(err.value)
    monkeypatch.setenv("TEST_PACS_PW", "correct horse")
    node = parse_node_arg(url, None, auth=PacsAuth("reader", "TEST_PACS_PW"))
    assert [s.patient_id for s in client_for(node).find_studies(QueryFilter())] == ["OTHER1"]
    assert "correct horse" not in repr(node)  # the password lives in the environment only


def test_http_404_on_a_wrong_dicomweb_root(orthanc):
    node = parse_node_arg(orthanc.server.rest_url + "/not-dicom-web", None)
    with pytest.raises(PacsError) as err:
        client_for(node).find_studies(QueryFilter())
    _one_line_naming(str(err.value), node.label)
    assert "not found (HTTP 404)" in str(err.value)


@pytest.mark.parametrize("status, words", [(401, "authentication failed"), (403, "access denied"),
                                           (404, "not found"), (500, "server error (HTTP 500)")])
def test_http_errors_from_a_hostile_server(status_server, status, words, tmp_path):
    url = status_server(status)
    node = parse_node_arg(url, None)
    client = client_for(node)
    echo = client.echo()
    assert not echo.ok and words in echo.message
    for call in (lambda: client.find_studies(QueryFilter(patient_id="X")),
                 lambda: client.find_series("1.2.3"),
                 lambda: client.retrieve("1.2.3", out_dir=tmp_path)):
        with pytest.raises(PacsError) as err:
            call()
        _one_line_naming(str(err.value), node.label)
        assert words in str(err.value)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_store_to_a_hostile_server_reports_every_object_failed(status_server, ct_dicom_dir):
    import pydicom

    node = parse_node_arg(status_server(500), None)
    ds = pydicom.dcmread(next(ct_dicom_dir.glob("*.dcm")))
    result = client_for(node).store([ds])
    assert result.stored == [] and [uid for uid, _ in result.failed] == [ds.SOPInstanceUID]
    assert "server error (HTTP 500)" in result.failed[0][1]
