"""Endpoint URLs: normalisation (the identity consent and keys are stored under) and the
plain-http policy, decided from the URL text alone so no socket is opened for a refused URL."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.pipeline.remote.errors import RemoteError

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Endpoint:
    scheme: str  # "http" | "https"
    host: str  # lower-case; IPv6 without brackets
    port: int
    base_path: str  # e.g. "/v1" (no trailing slash)

    @property
    def url(self) -> str:
        """Canonical base URL, e.g. ``https://ai.dept.example/v1``: the key for consent/keyring."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.base_path}"

    def path(self, suffix: str) -> str:
        return f"{self.base_path}/{suffix.lstrip('/')}"

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def __str__(self) -> str:
        return self.url


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and the name ``localhost`` only.

    Deliberately no DNS lookup: a name that merely *resolves* to loopback today is not
    trusted, and the decision must not touch the network.
    """
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(base_url: str) -> Endpoint:
    """Parse an OpenAI-style base URL (``https://host[:port][/v1]``).

    A URL without a path gets ``/v1`` (what vLLM, llama.cpp, TGI and OpenAI serve under).
    """
    raw = (base_url or "").strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise RemoteError("http_error", f"remote endpoint {raw!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise RemoteError(
            "http_error", f"remote endpoint {raw!r} is not an http(s) URL (expected e.g. https://host/v1)"
        )
    if parts.username or parts.password:
        # Credentials in the URL would end up in logs and run records; keys go via env/keyring.
        raise RemoteError(
            "http_error", f"remote endpoint {parts.hostname}: put the API key in the keyring or an environment variable, not in the URL"
        )
    path = parts.path.rstrip("/")
    if path.endswith("/chat/completions"):
        path = path[: -len("/chat/completions")]
    return Endpoint(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], path or "/v1")


def check_transport_policy(endpoint: Endpoint, allow_insecure_http: bool) -> None:
    """Refuse plain http to anything but loopback unless the user opted in for this endpoint."""
    if endpoint.scheme == "http" and not endpoint.is_loopback and not allow_insecure_http:
        raise RemoteError(
            "refused_insecure",
            f"remote endpoint {endpoint.url}: refusing unencrypted http:// to a non-loopback host "
            "(use https, or set allow_insecure_http = true for this endpoint in the profile)",
        )
