"""A real PACS for the PACS tests: Debian's Orthanc with its DICOMweb plugin on loopback.

``orthanc`` (one per session, read-only for the tests) holds the shared chest CT, the brain MR
and a small derived MR study with another date, accession and patient. Tests that delete or
delete from the small study use ``mutable_orthanc``, which restores it afterwards.
"""
from __future__ import annotations

import http.server
import threading
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from app.devtools.orthanc import OrthancServer, free_port, orthanc_missing

SMALL_STUDY_UID = "1.2.826.0.1.3680043.8.498.424242424242.1"
SMALL_SERIES_UID = "1.2.826.0.1.3680043.8.498.424242424242.2"
SMALL_N = 5


@dataclass
class Pacs:
    server: OrthancServer
    move_port: int  # the port Orthanc sends C-MOVEs for CAREVIEWER to
    ct_study: str = ""
    mr_study: str = ""
    small_study: str = SMALL_STUDY_UID


def require_orthanc() -> None:
    missing = orthanc_missing()
    if missing:
        pytest.skip(f"Orthanc is needed for the PACS tests: {missing}")


def small_study_files(mr_dicom_dir: Path, out: Path) -> list[Path]:
    """5 MR slices re-identified as another study (2021-06-15, accession ACC-42, patient OTHER1)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, src in enumerate(sorted(mr_dicom_dir.glob("*.dcm"))[:SMALL_N]):
        ds = pydicom.dcmread(src)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = SMALL_STUDY_UID, SMALL_SERIES_UID
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.424242424242.3.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate, ds.AccessionNumber = "20210615", "ACC-42"
        ds.PatientID, ds.PatientName, ds.StudyDescription = "OTHER1", "OTHER1^TEST", "small MR study"
        path = out / f"small{i + 1}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def small_files(mr_dicom_dir, tmp_path_factory) -> list[Path]:
    return small_study_files(mr_dicom_dir, tmp_path_factory.mktemp("small-study"))


@pytest.fixture(scope="session")
def orthanc(ct_dicom_dir, mr_dicom_dir, small_files):
    require_orthanc()
    move_port = free_port()
    with OrthancServer(aet="ORTHANC", modalities={"CAREVIEWER": move_port}) as server:
        server.upload(sorted(ct_dicom_dir.glob("*.dcm")) + sorted(mr_dicom_dir.glob("*.dcm")) + small_files)
        pacs = Pacs(server, move_port,
                    ct_study=str(pydicom.dcmread(next(ct_dicom_dir.glob("*.dcm"))).StudyInstanceUID),
                    mr_study=str(pydicom.dcmread(next(mr_dicom_dir.glob("*.dcm"))).StudyInstanceUID))
        yield pacs


@pytest.fixture()
def mutable_orthanc(orthanc, small_files):
    """The session's Orthanc for a test that deletes from the small study: it is uploaded again
    afterwards (a fresh server would cost ~3 s to stop)."""
    yield orthanc
    orthanc.server.upload(small_files)


def new_instances_from(paths: list[Path], study_uid: str | None = None) -> list[pydicom.Dataset]:
    """Copies of real instances as a new series (new series/SOP UIDs, same study unless given)."""
    series = generate_uid()
    out = []
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = series, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = "stored by the CARE tests"
        if study_uid:
            ds.StudyInstanceUID = study_uid
        out.append(ds)
    return out


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    status = 500

    def _answer(self) -> None:
        body = b'{"error": "hostile"}'
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture()
def status_server():
    """``start(status)`` -> URL of a DICOMweb root that answers every request with that HTTP status."""
    servers = []

    def start(status: int) -> str:
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
        srv.status = status  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/dicom-web"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()
