"""https endpoints: the certificate is verified (a department CA is trusted via ca_file)."""
from __future__ import annotations

import datetime
import ipaddress

import pytest

from app.pipeline.remote.errors import RemoteError
from app.pipeline.remote.http_client import ChatClient
from loopback_server import LoopbackChatServer


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[str, str]:
    # cryptography is present wherever keyring is on Linux (keyring -> SecretStorage -> cryptography).
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "care-test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(d / "cert.pem"), str(d / "key.pem")


def test_untrusted_certificate_is_refused_without_retry(self_signed):
    with LoopbackChatServer(tls=self_signed) as srv:
        client = ChatClient(srv.base_url, srv.model, timeout_s=5, max_retries=3, backoff_s=0.01)
        with pytest.raises(RemoteError) as ei:
            client.chat([{"role": "user", "content": "global"}], max_tokens=16)
        assert srv.requests == []
    assert ei.value.kind == "connection_refused"
    assert "certificate not trusted" in str(ei.value) and "ca_file" in str(ei.value)
    assert "attempts" not in str(ei.value)  # a trust failure is not retried


def test_department_ca_file_is_trusted(self_signed):
    cert, _ = self_signed
    with LoopbackChatServer(tls=self_signed) as srv:
        assert srv.base_url.startswith("https://")
        client = ChatClient(srv.base_url, srv.model, timeout_s=5, ca_file=cert)
        result = client.chat([{"role": "user", "content": "global"}], max_tokens=64)
        assert result.text.endswith("<answer>global</answer>") and len(srv.chat_requests) == 1
