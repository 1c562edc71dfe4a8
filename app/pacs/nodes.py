"""PACS nodes: what to connect to and how, and the ``pacs.toml`` file that lists them.

The file lives in the user's config directory (``$CARE_CONFIG_DIR`` overrides it, as for the
remote-endpoint consent). It never holds a password: a node names the environment variable
that holds it, and otherwise the OS keyring (service ``care-viewer``, username
``pacs:NODE:USER``) is asked, the way the department inference server's API key is found.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import urlparse

from app.pacs.errors import PacsError

NODES_FILE = "pacs.toml"
KEYRING_SERVICE = "care-viewer"
DEFAULT_CALLING_AE = "CAREVIEWER"
_AE_RE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,14}[\x21-\x7e])?$")  # 1-16 chars, no backslash below


class PacsProtocol(str, Enum):
    DICOMWEB = "dicomweb"
    DIMSE = "dimse"


@dataclass(frozen=True)
class PacsTls:
    """TLS for a node. DICOMweb uses it when the URL is https (``enabled`` is then implied);
    DIMSE only when ``enabled``. ``ca_file`` replaces the system trust store; ``cert_file`` /
    ``key_file`` are the client certificate some archives ask for."""

    enabled: bool = False
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""


@dataclass(frozen=True)
class PacsAuth:
    """HTTP basic auth (DICOMweb). The password comes from ``password_env``, else the keyring."""

    username: str
    password_env: str = ""
    use_keyring: bool = True

    def keyring_user(self, node_name: str) -> str:
        return f"pacs:{node_name}:{self.username}"

    def password(self, node_name: str) -> str | None:
        if self.password_env:
            value = os.environ.get(self.password_env, "")
            if value:
                return value
        if not self.use_keyring:
            return None
        try:
            import keyring  # noqa: PLC0415 - optional at run time

            return keyring.get_password(KEYRING_SERVICE, self.keyring_user(node_name)) or None
        except Exception:  # noqa: BLE001 - no keyring package / no usable backend: no password
            return None


@dataclass(frozen=True)
class PacsNode:
    name: str
    protocol: PacsProtocol
    url: str | None = None  # DICOMweb root, e.g. http://pacs:8042/dicom-web
    ae_title: str | None = None  # DIMSE called AE title
    host: str | None = None
    port: int | None = None
    calling_ae: str = DEFAULT_CALLING_AE
    tls: PacsTls = field(default_factory=PacsTls)
    auth: PacsAuth | None = None
    # DIMSE: retrieve by C-MOVE to ``calling_ae``, with our Storage SCP listening on this port
    # (the archive must know calling_ae -> this host:port); None retrieves by C-GET.
    move_port: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", PacsProtocol(self.protocol))
        if self.protocol is PacsProtocol.DICOMWEB:
            if not self.url or urlparse(self.url).scheme not in ("http", "https") or not urlparse(self.url).netloc:
                raise ValueError(f"PACS node {self.name!r}: a DICOMweb node needs an http(s) URL, got {self.url!r}")
            object.__setattr__(self, "url", self.url.rstrip("/"))
        else:
            if not self.ae_title or not _AE_RE.match(self.ae_title) or "\\" in self.ae_title:
                raise ValueError(f"PACS node {self.name!r}: invalid AE title {self.ae_title!r} (1-16 characters)")
            if not self.host or not self.port or not 0 < int(self.port) < 65536:
                raise ValueError(f"PACS node {self.name!r}: a DIMSE node needs a host and a port 1-65535")
        if not _AE_RE.match(self.calling_ae) or "\\" in self.calling_ae:
            raise ValueError(f"PACS node {self.name!r}: invalid calling AE title {self.calling_ae!r}")

    @property
    def address(self) -> str:
        if self.protocol is PacsProtocol.DICOMWEB:
            return str(self.url)
        return f"{self.ae_title}@{self.host}:{self.port}"

    @property
    def label(self) -> str:
        """``NAME (ADDRESS)``, or just the address when the name is the address."""
        return self.address if self.name == self.address else f"{self.name} ({self.address})"

    def error(self, reason: str) -> PacsError:
        return PacsError(self.label, reason)


def parse_dimse_arg(text: str) -> tuple[str, str, int]:
    """``AET@HOST:PORT`` -> (aet, host, port); ValueError with the expected form otherwise."""
    m = re.match(r"^([^@]{1,16})@(\[[^\]]+\]|[^:@]+):(\d{1,5})$", text.strip())
    if not m:
        raise ValueError(f"expected AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242), got {text!r}")
    host = m.group(2).strip("[]")
    return m.group(1), host, int(m.group(3))


def parse_node_arg(dicomweb: str | None, dimse: str | None, *, calling_ae: str = DEFAULT_CALLING_AE,
                   auth: PacsAuth | None = None, move_port: int | None = None) -> PacsNode:
    """The node named on the command line by ``--dicomweb URL`` or ``--dimse AET@HOST:PORT``."""
    if bool(dicomweb) == bool(dimse):
        raise ValueError("give exactly one of --dicomweb URL or --dimse AET@HOST:PORT")
    if dicomweb:
        tls = PacsTls(enabled=dicomweb.lower().startswith("https:"))
        return PacsNode(name=dicomweb.rstrip("/"), protocol=PacsProtocol.DICOMWEB, url=dicomweb,
                        calling_ae=calling_ae, tls=tls, auth=auth)
    aet, host, port = parse_dimse_arg(str(dimse))
    return PacsNode(name=f"{aet}@{host}:{port}", protocol=PacsProtocol.DIMSE, ae_title=aet, host=host,
                    port=port, calling_ae=calling_ae, move_port=move_port)


def config_dir() -> Path:
    # Same place as app/pipeline/remote/consent.py (this package may not import the pipeline).
    env = os.environ.get("CARE_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("care-viewer", "CARE"))


def nodes_path() -> Path:
    return config_dir() / NODES_FILE


def _node_from_table(t: dict, where: str) -> PacsNode:
    if not isinstance(t.get("name"), str) or not t["name"].strip():
        raise ValueError(f"{where}: every [[node]] needs a name")
    unknown = set(t) - {"name", "protocol", "url", "ae_title", "host", "port", "calling_ae", "tls", "auth",
                        "move_port", "password"}
    if "password" in t:
        raise ValueError(f"{where}: node {t['name']!r} has a password in the file; name an environment "
                         "variable in [node.auth] password_env or store it in the keyring instead")
    if unknown:
        raise ValueError(f"{where}: node {t['name']!r}: unknown key(s) {', '.join(sorted(unknown))}")
    try:
        protocol = PacsProtocol(t.get("protocol", ""))
    except ValueError:
        raise ValueError(f"{where}: node {t['name']!r}: protocol must be 'dicomweb' or 'dimse'") from None
    auth = t.get("auth")
    if auth is not None:
        if "password" in auth:
            raise ValueError(f"{where}: node {t['name']!r} has a password in the file; use password_env or the keyring")
        auth = PacsAuth(username=str(auth["username"]), password_env=str(auth.get("password_env", "")),
                        use_keyring=bool(auth.get("use_keyring", True)))
    tls = PacsTls(**{k: v for k, v in (t.get("tls") or {}).items() if k in PacsTls.__dataclass_fields__})
    return PacsNode(name=t["name"], protocol=protocol, url=t.get("url"), ae_title=t.get("ae_title"),
                    host=t.get("host"), port=t.get("port"), calling_ae=t.get("calling_ae", DEFAULT_CALLING_AE),
                    tls=tls, auth=auth, move_port=t.get("move_port"))


def load_nodes(path: Path | None = None) -> list[PacsNode]:
    """The configured nodes ([] when the file does not exist); ValueError naming the file otherwise."""
    path = path or nodes_path()
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the PACS nodes ({exc})") from None
    nodes = [_node_from_table(t, str(path)) for t in data.get("node", [])]
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: two nodes share a name")
    return nodes


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid TOML basic string


def save_nodes(nodes: list[PacsNode], path: Path | None = None) -> Path:
    """Write the nodes atomically (never a password: there is no field for one)."""
    path = path or nodes_path()
    lines = ["# CARE Viewer PACS nodes. Passwords are never stored here: see [node.auth] password_env.", ""]
    for n in nodes:
        lines.append("[[node]]")
        for key in ("name", "protocol", "url", "ae_title", "host", "port", "calling_ae", "move_port"):
            value = getattr(n, key)
            if value is not None:
                lines.append(f"{key} = {_toml_value(value.value if isinstance(value, Enum) else value)}")
        if n.tls != PacsTls():
            lines.append("[node.tls]")
            lines += [f"{k} = {_toml_value(getattr(n.tls, k))}" for k in PacsTls.__dataclass_fields__]
        if n.auth is not None:
            lines.append("[node.auth]")
            lines += [f"{k} = {_toml_value(getattr(n.auth, k))}" for k in ("username", "password_env", "use_keyring")]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pacs-", suffix=".toml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return path


def find_node(name: str, path: Path | None = None) -> PacsNode:
    for n in load_nodes(path):
        if n.name == name:
            return n
    raise ValueError(f"no PACS node named {name!r} in {path or nodes_path()}")


def store_password(node: PacsNode, password: str) -> None:
    """Put the node's password in the OS keyring (for the settings dialog); ValueError if impossible."""
    if node.auth is None or not password:
        raise ValueError(f"PACS node {node.name!r}: no username configured, or an empty password")
    try:
        import keyring  # noqa: PLC0415

        keyring.set_password(KEYRING_SERVICE, node.auth.keyring_user(node.name), password)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot store the password for PACS node {node.name!r}: no usable OS keyring "
                         f"({exc.__class__.__name__}); set {node.auth.password_env or 'an environment variable'} "
                         "instead") from None
