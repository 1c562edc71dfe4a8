"""A real PACS for tests and demos: Debian's Orthanc (+ its DICOMweb plugin) on loopback.

``OrthancServer`` writes a JSON configuration into a temporary folder (storage and index
there too), starts ``/usr/sbin/Orthanc`` on free loopback ports, waits until ``/system``
answers (~0.2 s) and stops it on exit. It installs nothing: ``scripts/setup.sh`` / ``.ci/run``
apt-install ``orthanc orthanc-dicomweb``.
"""
from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

ORTHANC_BIN = Path("/usr/sbin/Orthanc")
PLUGIN_CANDIDATES = (Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
                     Path("/usr/lib/orthanc/plugins/libOrthancDicomWeb.so"))


def orthanc_missing() -> str:
    """Why Orthanc cannot be started here ("" when it can)."""
    if not ORTHANC_BIN.exists():
        return f"{ORTHANC_BIN} not installed (apt-get install orthanc orthanc-dicomweb)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return ""


def dicomweb_plugin() -> Path | None:
    return next((p for p in PLUGIN_CANDIDATES if p.exists()), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OrthancServer:
    """``with OrthancServer(aet="ORTHANC", users={"u": "p"}, modalities={"CAREVIEWER": 11112}) as pacs: ...``

    ``modalities`` maps an AE title to a loopback port: the C-MOVE destinations Orthanc knows.
    ``users`` turns on HTTP basic auth (REST and DICOMweb); ``rest_url`` calls made by this
    class use the first user. ``tls=(cert.pem, key.pem)`` turns on DICOM TLS on the DICOM port
    with that certificate (no client certificate asked for). HTTP stays plain: Debian's Orthanc
    1.10.1 crashes (SIGSEGV) on the first HTTPS connection.
    """

    def __init__(self, aet: str = "ORTHANC", users: Mapping[str, str] | None = None,
                 modalities: Mapping[str, int] | None = None, check_called_aet: bool = True,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.aet = aet
        self.tls = tls
        self.users = dict(users or {})
        self.modalities = dict(modalities or {})
        self.check_called_aet = check_called_aet
        self.http_port = 0
        self.dicom_port = 0
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None

    # --- addresses --------------------------------------------------------------------
    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.rest_url}/dicom-web"

    @property
    def dimse_arg(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    @property
    def log_text(self) -> str:
        log = self._dir / "orthanc.log" if self._dir else None
        return log.read_text(errors="replace") if log and log.exists() else ""

    # --- life cycle -------------------------------------------------------------------
    def config(self) -> dict:
        assert self._dir is not None
        cfg = self._base_config()
        if self.tls:
            cert, key = (str(p) for p in self.tls)
            cfg.update({"DicomTlsEnabled": True, "DicomTlsCertificate": cert, "DicomTlsPrivateKey": key,
                        "DicomTlsTrustedCertificates": cert, "DicomTlsRemoteCertificateRequired": False})
        return cfg

    def _base_config(self) -> dict:
        assert self._dir is not None
        return {
            "Name": "care-test-orthanc",
            "StorageDirectory": str(self._dir / "storage"),
            "IndexDirectory": str(self._dir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "Plugins": [str(dicomweb_plugin())],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "DicomCheckCalledAet": self.check_called_aet,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomModalities": {aet: [aet, "127.0.0.1", port] for aet, port in self.modalities.items()},
            "StableAge": 1,
            "HttpDescribeErrors": True,
        }

    def start(self, timeout_s: float = 20.0) -> "OrthancServer":
        missing = orthanc_missing()
        if missing:
            raise RuntimeError(missing)
        self._dir = Path(tempfile.mkdtemp(prefix="care-orthanc-"))
        self.http_port, self.dicom_port = free_port(), free_port()
        while self.dicom_port == self.http_port:
            self.dicom_port = free_port()
        cfg = self._dir / "orthanc.json"
        cfg.write_text(json.dumps(self.config(), indent=2))
        log = open(self._dir / "orthanc.log", "wb")  # noqa: SIM115 - owned by the process
        self._proc = subprocess.Popen([str(ORTHANC_BIN), str(cfg)], stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=self._dir)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                text = self.log_text
                self.stop()
                raise RuntimeError(f"Orthanc exited at start (code {self._proc.returncode}):\n{text[-2000:]}")
            try:
                self.rest("GET", "/system")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer on {self.rest_url}/system within {timeout_s} s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: Orthanc closes its index cleanly
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "OrthancServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- REST -------------------------------------------------------------------------
    def rest(self, method: str, path: str, body: bytes | dict | list | None = None,
             content_type: str = "application/json") -> object:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(self.rest_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.users:
            user, pw = next(iter(self.users.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip() else None

    def upload(self, paths: Iterable[Path | str]) -> list[str]:
        """POST each DICOM file to /instances; returns the SOP Instance UIDs stored."""
        uids = []
        for p in paths:
            reply = self.rest("POST", "/instances", Path(p).read_bytes(), "application/dicom")
            tags = self.rest("GET", f"/instances/{reply['ID']}/simplified-tags")
            uids.append(tags["SOPInstanceUID"])
        return uids

    def instances(self) -> list[str]:
        """SOP Instance UIDs of every instance on the server."""
        out = []
        for oid in self.rest("GET", "/instances"):
            out.append(self.rest("GET", f"/instances/{oid}/simplified-tags")["SOPInstanceUID"])
        return sorted(out)

    def _orthanc_id(self, uid: str, level: str) -> str | None:
        hits = self.rest("POST", "/tools/lookup", uid.encode(), "text/plain")
        return next((h["ID"] for h in hits if h["Type"] == level), None)

    def delete_study(self, study_uid: str) -> bool:
        oid = self._orthanc_id(study_uid, "Study")
        if oid is None:
            return False
        self.rest("DELETE", f"/studies/{oid}")
        return True

    def delete_instance(self, sop_uid: str) -> bool:
        oid = self._orthanc_id(sop_uid, "Instance")
        if oid is None:
            return False
        self.rest("DELETE", f"/instances/{oid}")
        return True

    def instance_file(self, sop_uid: str) -> bytes:
        """The stored Part-10 bytes of one instance (to read back what a store sent)."""
        oid = self._orthanc_id(sop_uid, "Instance")
        if oid is None:
            raise KeyError(sop_uid)
        req = urllib.request.Request(f"{self.rest_url}/instances/{oid}/file")
        if self.users:
            user, pw = next(iter(self.users.items()))
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()
