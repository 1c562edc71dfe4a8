"""Per-endpoint consent to send patient images off this machine.

Stored as JSON in the user's config directory (``$CARE_CONFIG_DIR`` overrides it, for tests
and managed installs). Consent is tied to the exact statement text shown: if the statement
changes, earlier consent no longer counts and the user is asked again.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

from app.pipeline.remote.endpoint import parse_endpoint
from app.pipeline.remote.errors import RemoteError

CONSENT_FILE = "remote_consent.json"


def consent_statement(endpoint_url: str) -> str:
    """The text the user says yes to (CLI prompt and GUI dialog show it verbatim)."""
    return (
        f"Patient images from the open study, your question and the case text the models "
        f"produce (entity names, mask statistics, chains of thought) will be sent to the server at "
        f"{endpoint_url} for analysis. No patient name, ID or other DICOM text is sent, but the "
        "images themselves may identify the patient. Send patient data to this server only if "
        "your institution permits it. Allow sending it to this server from now on?"
    )


def _statement_digest(endpoint_url: str) -> str:
    return hashlib.sha256(consent_statement(endpoint_url).encode()).hexdigest()


def config_dir() -> Path:
    env = os.environ.get("CARE_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("care-viewer", "CARE"))


def _canonical(endpoint: str) -> str:
    return parse_endpoint(endpoint).url


@dataclass(frozen=True)
class ConsentRecord:
    endpoint: str
    granted_by: str
    granted_at: str  # ISO 8601 UTC
    via: str  # "cli-prompt" | "--yes-send-images" | "gui" | ...
    statement_sha256: str


class ConsentStore:
    """Consent decisions, one per canonical endpoint URL."""

    def __init__(self, path: Path | None = None) -> None:
        self._explicit = path
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        # Resolved on each use so CARE_CONFIG_DIR set after construction (tests) applies.
        return self._explicit or config_dir() / CONSENT_FILE

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # Unreadable or corrupt: treat as "no consent" (the safe answer); grant() rewrites it.
            return {}
        endpoints = data.get("endpoints") if isinstance(data, dict) else None
        return endpoints if isinstance(endpoints, dict) else {}

    def _write(self, endpoints: dict[str, dict]) -> None:
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".consent-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "endpoints": endpoints}, fh, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)  # atomic: a crash never leaves half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, endpoint: str) -> ConsentRecord | None:
        url = _canonical(endpoint)
        raw = self._read().get(url)
        if not isinstance(raw, dict) or raw.get("statement_sha256") != _statement_digest(url):
            return None
        return ConsentRecord(
            endpoint=url,
            granted_by=str(raw.get("granted_by", "")),
            granted_at=str(raw.get("granted_at", "")),
            via=str(raw.get("via", "")),
            statement_sha256=str(raw["statement_sha256"]),
        )

    def has_consent(self, endpoint: str) -> bool:
        return self.get(endpoint) is not None

    def grant(self, endpoint: str, who: str | None = None, when: datetime | None = None, via: str = "") -> ConsentRecord:
        url = _canonical(endpoint)
        try:
            who = who or getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in some containers
            who = "unknown"
        when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
        rec = ConsentRecord(url, who, when.isoformat(timespec="seconds"), via, _statement_digest(url))
        with self._lock:
            endpoints = self._read()
            endpoints[url] = {
                "granted_by": rec.granted_by,
                "granted_at": rec.granted_at,
                "via": rec.via,
                "statement_sha256": rec.statement_sha256,
            }
            self._write(endpoints)
        return rec

    def revoke(self, endpoint: str) -> bool:
        """True if there was consent to remove."""
        url = _canonical(endpoint)
        with self._lock:
            endpoints = self._read()
            if endpoints.pop(url, None) is None:
                return False
            self._write(endpoints)
        return True

    def require(self, endpoint: str) -> None:
        if not self.has_consent(endpoint):
            url = _canonical(endpoint)
            raise RemoteError(
                "consent_required",
                f"remote endpoint {url}: sending patient images needs your consent first "
                "(CLI: --yes-send-images; GUI: answer the consent dialog)",
            )


def ensure_consent_cli(
    store: ConsentStore,
    endpoint: str,
    *,
    assume_yes: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    input_fn: Callable[[str], str] | None = None,
) -> bool:
    """CLI flow: already granted -> True; ``--yes-send-images`` -> record and True; an
    interactive terminal -> ask; otherwise False (the caller exits with a usage message)."""
    if store.has_consent(endpoint):
        return True
    if assume_yes:
        store.grant(endpoint, via="--yes-send-images")
        return True
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if input_fn is None:
        if not (hasattr(stdin, "isatty") and stdin.isatty()):
            return False

        def input_fn(prompt: str) -> str:
            stdout.write(prompt)
            stdout.flush()
            return stdin.readline()

    url = _canonical(endpoint)
    answer = input_fn(consent_statement(url) + " [y/N] ").strip().lower()
    if answer in ("y", "yes"):
        store.grant(url, via="cli-prompt")
        return True
    return False
