"""What the model store reads and reports: folder manifests, install states, verify and
import results (plain dataclasses, no I/O beyond JSON text)."""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.pipeline.profiles import ModelSpec

CARE_MANIFEST = ".care-manifest.json"
_TMP_PREFIX = ".import-"
_SKIP_DIRS = {".cache", ".git", ".huggingface"}  # hub download scratch space, VCS metadata
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 4 * 1024 * 1024


class ModelStoreError(Exception):
    """A failure with a one-line, user-facing message (no traceback needed)."""


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to the model folder, "/"-separated
    size: int
    sha256: str


@dataclass
class CareManifest:
    """What ``.care-manifest.json`` holds: the provenance and content of one model folder."""

    repo_id: str
    revision: str
    source: str  # "fetch" | "import:<dir>"
    created: str
    files: list[FileRecord] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CareManifest:
        raw = json.loads(text)
        files = [FileRecord(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in raw.get("files", [])]
        return cls(str(raw.get("repo_id", "")), str(raw.get("revision", "")), str(raw.get("source", "")),
                   str(raw.get("created", "")), files)


@dataclass
class ModelState:
    """Install state of one model (one folder; several roles may share it)."""

    roles: list[str]
    spec: ModelSpec
    path: Path
    status: str  # "installed" | "bundled" | "missing" | "incomplete" | "remote" | "unavailable"
    size_bytes: int = 0
    missing: list[str] = field(default_factory=list)  # expected files absent or of the wrong size
    has_manifest: bool = False
    revision: str = ""  # from .care-manifest.json when present, else the pinned one
    detail: str = ""
    endpoint: str = ""  # remote models: the server's base URL (nothing on disk)

    @property
    def installed(self) -> bool:
        """Usable without a download (a remote model's reachability is a separate check)."""
        return self.status in ("installed", "bundled", "remote")

    def to_dict(self) -> dict:
        s = self.spec
        return {
            "roles": self.roles, "backend": s.backend, "repo_id": s.repo_id,
            "revision": self.revision or s.revision, "pinned_revision": s.revision,
            "path": str(self.path), "status": self.status, "installed": self.installed,
            "size_bytes": self.size_bytes, "expected_gb": s.size_gb, "vram_gb": s.vram_gb,
            "gated": s.gated, "bundled": s.bundled, "local_only": s.local_only,
            "has_manifest": self.has_manifest, "missing": self.missing, "detail": self.detail,
            "endpoint": self.endpoint, "unpublished": s.unpublished,
        }


@dataclass
class VerifyResult:
    spec: ModelSpec
    path: Path
    status: str  # "ok" | "unverified" | "missing" | "corrupt" | "unavailable"
    checked: int = 0  # files hashed
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unverified", "remote")

    def to_dict(self) -> dict:
        return {"repo_id": self.spec.repo_id, "path": str(self.path), "status": self.status,
                "ok": self.ok, "checked": self.checked, "problems": self.problems, "warnings": self.warnings}


@dataclass
class ImportResult:
    spec: ModelSpec
    status: str  # "imported" | "skipped" | "failed"
    reason: str = ""
    source: Path | None = None
    files: int = 0
    bytes: int = 0

    def to_dict(self) -> dict:
        return {"repo_id": self.spec.repo_id, "folder": self.spec.folder_name, "status": self.status,
                "reason": self.reason, "source": str(self.source) if self.source else None,
                "files": self.files, "bytes": self.bytes}
