"""TLS: DICOM TLS to a real Orthanc, and HTTPS DICOMweb to a small loopback server (Debian's
Orthanc 1.10.1 crashes on HTTPS), trusting the node's certificate through its ``ca_file``;
without it the connection is refused, in one line."""
from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading

import pytest

from app.devtools.orthanc import OrthancServer
from app.pacs.client import client_for
from app.pacs.errors import PacsError
from app.pacs.models import QueryFilter
from app.pacs.nodes import PacsNode, PacsProtocol, PacsTls
from tests.pacs.conftest import require_orthanc


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


@pytest.fixture(scope="module")
def tls_orthanc(certificate, small_files):
    require_orthanc()
    with OrthancServer(aet="TLSPACS", tls=certificate) as server:
        server.upload(small_files[:2])
        yield server


class _QidoHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # an archive with no studies
        body = b"[]"
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_url(certificate):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QidoHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*(str(p) for p in certificate))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/dicom-web"
    srv.shutdown()
    srv.server_close()


def _dimse(server, ca_file: str | None) -> PacsNode:
    tls = PacsTls(enabled=True, ca_file=ca_file) if ca_file is not None else PacsTls()
    return PacsNode("dimse", PacsProtocol.DIMSE, ae_title=server.aet, host="127.0.0.1", port=server.dicom_port, tls=tls)


def test_dicom_tls_with_the_node_certificate_trusted(tls_orthanc, certificate):
    client = client_for(_dimse(tls_orthanc, str(certificate[0])))
    assert client.echo().ok, client.echo().message
    assert [s.patient_id for s in client.find_studies(QueryFilter())] == ["OTHER1"]


def test_dicom_tls_refused_without_trust_or_without_tls(tls_orthanc):
    # The system store does not know the self-signed certificate; plain DICOM meets a TLS port.
    for node, words in ((_dimse(tls_orthanc, ""), "TLS failed: certificate verify failed"),
                        (_dimse(tls_orthanc, None), "dropped the association")):
        with pytest.raises(PacsError) as err:
            client_for(node).find_studies(QueryFilter())
        assert str(err.value).startswith(f"PACS node {node.label}: ") and "\n" not in str(err.value)
        assert words in str(err.value)


def test_https_dicomweb_trusts_the_ca_file(https_url, certificate):
    trusted = PacsNode("web", PacsProtocol.DICOMWEB, url=https_url, tls=PacsTls(True, ca_file=str(certificate[0])))
    assert client_for(trusted).find_studies(QueryFilter()) == []
    untrusted = PacsNode("web", PacsProtocol.DICOMWEB, url=https_url)
    with pytest.raises(PacsError, match=r"^PACS node web \(https://127.0.0.1:\d+/dicom-web\): TLS failed"):
        client_for(untrusted).find_studies(QueryFilter())
