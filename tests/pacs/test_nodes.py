"""PACS nodes and the settings file, query filters and date ranges, the local file checks (no server)."""
from __future__ import annotations

import datetime as dt

import keyring
import pydicom
import pytest

from app.pacs.local_files import already_present, instance_path, verify_instance, write_atomic
from app.pacs.models import QueryFilter, parse_date_range
from app.pacs.nodes import (PacsAuth, PacsNode, PacsProtocol, PacsTls, load_nodes, nodes_path, parse_node_arg,
                            save_nodes, store_password)


def test_parse_node_arg_both_protocols():
    web = parse_node_arg("https://pacs.example:8443/dicom-web/", None)
    assert (web.protocol, web.url, web.tls.enabled) == (PacsProtocol.DICOMWEB, "https://pacs.example:8443/dicom-web", True)
    dimse = parse_node_arg(None, "ORTHANC@10.0.0.5:4242", calling_ae="WS1")
    assert (dimse.ae_title, dimse.host, dimse.port, dimse.calling_ae) == ("ORTHANC", "10.0.0.5", 4242, "WS1")
    assert dimse.label == "ORTHANC@10.0.0.5:4242"


@pytest.mark.parametrize("dicomweb, dimse", [(None, None), ("http://a/dw", "A@b:1"), ("ftp://x", None),
                                             (None, "ORTHANC@host"), (None, "AN-AE-TITLE-OVER-16@h:1"),
                                             (None, "A@h:70000")])
def test_parse_node_arg_refuses_malformed(dicomweb, dimse):
    with pytest.raises(ValueError):
        parse_node_arg(dicomweb, dimse)


def test_nodes_file_round_trip_never_holds_a_password(monkeypatch):
    nodes = [
        PacsNode("dept", PacsProtocol.DICOMWEB, url="https://pacs/dicom-web", tls=PacsTls(True, ca_file="/etc/ca.pem"),
                 auth=PacsAuth("reader", password_env="DEPT_PACS_PW")),
        PacsNode("modality-room", PacsProtocol.DIMSE, ae_title="ORTHANC", host="pacs", port=4242,
                 calling_ae="CARE1", move_port=11112),
    ]
    path = save_nodes(nodes)
    assert path == nodes_path() and path.exists()
    assert load_nodes() == nodes
    store_password(nodes[0], "s3cret")
    assert "s3cret" not in path.read_text()
    assert keyring.get_password("care-viewer", "pacs:dept:reader") == "s3cret"
    assert nodes[0].auth.password("dept") == "s3cret"  # from the keyring
    monkeypatch.setenv("DEPT_PACS_PW", "from-env")
    assert nodes[0].auth.password("dept") == "from-env"  # the environment wins


def test_nodes_file_with_a_password_is_refused(tmp_path):
    path = tmp_path / "pacs.toml"
    path.write_text('[[node]]\nname = "x"\nprotocol = "dicomweb"\nurl = "http://h/dw"\n'
                    '[node.auth]\nusername = "u"\npassword = "plain"\n')
    with pytest.raises(ValueError, match="password"):
        load_nodes(path)
    assert load_nodes(tmp_path / "absent.toml") == []


@pytest.mark.parametrize("text, lo, hi", [
    ("20200101-20201231", dt.date(2020, 1, 1), dt.date(2020, 12, 31)),
    ("2020-01-01-2020-12-31", dt.date(2020, 1, 1), dt.date(2020, 12, 31)),
    ("20200101-", dt.date(2020, 1, 1), None),
    ("-2020-12-31", None, dt.date(2020, 12, 31)),
    ("2021-06-15", dt.date(2021, 6, 15), dt.date(2021, 6, 15)),
])
def test_date_ranges(text, lo, hi):
    assert parse_date_range(text) == (lo, hi)


@pytest.mark.parametrize("text", ["2020", "20201301-", "20201231-20200101", "-", "yesterday"])
def test_bad_date_ranges(text):
    with pytest.raises(ValueError):
        parse_date_range(text)


def test_query_filter_keys():
    q = QueryFilter(patient_name="DOE^J*", date_from=dt.date(2020, 1, 1), modality="ct")
    assert q.keys() == {"PatientName": "DOE^J*", "StudyDate": "20200101-", "ModalitiesInStudy": "CT"}
    assert QueryFilter(date_from=dt.date(2021, 6, 15), date_to=dt.date(2021, 6, 15)).dicom_date() == "20210615"
    assert QueryFilter().keys() == {}


def test_verify_write_and_resume_checks(ct_dicom_dir, tmp_path):
    src = sorted(ct_dicom_dir.glob("*.dcm"))[0]
    ds = pydicom.dcmread(src)
    study, series, sop = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    assert verify_instance(ds, study, sop) == ""
    assert "asked for" in verify_instance(ds, study, "1.2.3")
    assert "StudyInstanceUID" in verify_instance(ds, "1.2.3", sop)
    short = pydicom.dcmread(src)
    short.PixelData = short.PixelData[:-100]
    assert "pixel data is" in verify_instance(short, study, sop)

    path = instance_path(tmp_path, study, series, sop)
    assert path == tmp_path / study / series / f"{sop}.dcm"
    write_atomic(ds, path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert pydicom.dcmread(path).PixelData == pydicom.dcmread(src).PixelData
    assert already_present(path, study, sop)
    other = instance_path(tmp_path, study, series, "1.2.3.4")
    with pytest.raises(ValueError, match="failed its check: no good"):
        write_atomic(ds, other, check=lambda tmp: "no good" if tmp.exists() else "")
    assert not other.exists() and [p.name for p in path.parent.iterdir()] == [path.name]
    assert not already_present(path, study, "1.2.3")
    path.write_bytes(path.read_bytes()[:-5000])  # a truncated file is fetched again
    assert not already_present(path, study, sop)
    with pytest.raises(ValueError):
        instance_path(tmp_path, "../../etc", series, sop)  # a server's UID never escapes the folder
