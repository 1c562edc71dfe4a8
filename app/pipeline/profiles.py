"""Model profiles: which model plays which role, read from ``models/profiles.toml``.

A profile maps roles to model specs::

    [profiles.workstation]
    description = "..."
    vram_gb = 12
    weights = "base"                   # base | paper | random-test | remote (app.pipeline.disclosure)
    [profiles.workstation.entity]      # stage 1
    backend = "internvl"
    repo_id = "OpenGVLab/InternVL3-2B-hf"
    revision = "<commit sha>"
    [profiles.workstation.segmenter]   # stage 2, text-prompted route (optional)
    [profiles.workstation.box_segmenter]  # stage 2, box-prompted route (LiteMedSAM in every profile)
    [profiles.workstation.vqa]         # stage 3
    [profiles.workstation.coordinator] # CARE-Coord (optional)

A role may instead name an entry of the top-level ``[models.<key>]`` catalog with
``model = "<key>"``; the entry's fields are merged under the role's own (the role wins), so a
pinned revision and file list is written once and shared by every profile.

Weights live in the models folder: ``$CARE_MODELS_DIR`` if set, else ``models/weights``
beside a source checkout, else the user's data directory. A spec's ``local_dir`` (default:
the repo id with ``/`` replaced by ``--``) names its folder there.
"""
from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.pipeline.profile_options import option_problems
from app.pipeline.vocab import BackendKind, ProfileWeights, Role, coerce

# The profile roles, in stage order (Role.ENCODER, MiniLM, is not a profile role).
ROLES = ("entity", "segmenter", "box_segmenter", "vqa", "coordinator")
# Backends a profile may name (MiniLM is bundled with the app, never named by a profile).
BACKENDS = tuple(k.value for k in BackendKind if k != BackendKind.MINILM)
# What a profile may declare as ``weights`` (UNDECLARED is only the default of an older manifest).
WEIGHTS = tuple(w.value for w in ProfileWeights if w != ProfileWeights.UNDECLARED)
_SPEC_FIELDS: dict[str, tuple[type, ...]] = {
    "backend": (str,), "repo_id": (str,), "revision": (str,), "local_dir": (str,), "files": (dict,),
    "size_gb": (int, float), "vram_gb": (int, float),
}


class ProfileError(ValueError):
    """A malformed profiles.toml: one line naming the file, the profile and the field."""

_REPO_ROOT = Path(__file__).resolve().parents[2]
# Inside a PyInstaller bundle the manifest ships at <bundle data dir>/models/profiles.toml
# (installer/care_viewer.spec puts it there); there is no checkout to find it in.
_BUNDLE_DIR = Path(sys._MEIPASS) if getattr(sys, "_MEIPASS", None) else None  # type: ignore[attr-defined]
# The shipped manifest. $CARE_MANIFEST is read at call time by manifest_path(), never here: a value
# set when this module happened to be imported (a test's temporary manifest) must not outlive it.
MANIFEST_PATH = (_BUNDLE_DIR or _REPO_ROOT) / "models" / "profiles.toml"


def manifest_path() -> Path:
    """The manifest in effect now: ``$CARE_MANIFEST`` read at call time, else ``MANIFEST_PATH``
    (the shipped one), so tests and the CLI can point at another file at any time."""
    env = os.environ.get("CARE_MANIFEST")
    return Path(env).expanduser() if env else MANIFEST_PATH


def models_dir() -> Path:
    env = os.environ.get("CARE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    if _BUNDLE_DIR is None and (_REPO_ROOT / "pyproject.toml").is_file():
        return _REPO_ROOT / "models" / "weights"
    from platformdirs import user_data_dir

    return Path(user_data_dir("care-viewer", "CARE")) / "models"


@dataclass(frozen=True)
class ModelSpec:
    role: Role
    backend: BackendKind  # str enum: compares and serialises as "internvl", "remote", ...
    repo_id: str = ""
    revision: str = ""
    local_dir: str = ""
    # Expected files and their sha256 where known ({"model.safetensors": "ab12..."}).
    files: dict[str, str] = field(default_factory=dict)
    size_gb: float = 0.0
    vram_gb: float = 0.0
    # Backend-specific settings (endpoint, max_new_tokens, ...).
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Code and tests build specs from plain strings: coerce once here, so every reader
        # compares enums (ValueError naming the field for a string that is not a member).
        object.__setattr__(self, "role", coerce(Role, self.role, "role"))
        object.__setattr__(self, "backend", coerce(BackendKind, self.backend, "backend"))

    @property
    def folder_name(self) -> str:
        return self.local_dir or self.repo_id.replace("/", "--")

    def path(self, base: Path | None = None) -> Path:
        return (base or models_dir()) / self.folder_name

    @property
    def bundled(self) -> bool:
        """Weights ship inside a Python package (LiteMedSAM): nothing to download."""
        return self.backend == BackendKind.LITEMEDSAM

    @property
    def gated(self) -> bool:
        """The hub repo needs an accepted licence and a token (facebook/sam3)."""
        return bool(self.options.get("gated", False))

    @property
    def local_only(self) -> bool:
        """Made on this machine (``local/...``, e.g. the tiny test checkpoints): not on the hub."""
        return self.repo_id.startswith("local/")

    @property
    def unpublished(self) -> str:
        """Why these weights cannot be had yet ("" = they can): a documented slot, e.g. the CARE
        paper's trained experts. Never downloadable, never installed, never loaded."""
        return str(self.options.get("unpublished", ""))

    @property
    def sizes(self) -> dict[str, int]:
        """Exact byte sizes of expected files, where known."""
        return {str(k): int(v) for k, v in dict(self.options.get("sizes", {})).items()}

    @property
    def allow_patterns(self) -> list[str] | None:
        """Which repo files fetch downloads and import copies (None: all)."""
        pats = self.options.get("allow_patterns")
        return [str(p) for p in pats] if pats else None


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    vram_gb: float
    models: dict[str, ModelSpec]
    # What the expert weights are: base checkpoints, the paper's, random test ones, a server's.
    weights: ProfileWeights = ProfileWeights.UNDECLARED

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", coerce(ProfileWeights, self.weights, "weights"))

    @property
    def unpublished(self) -> str:
        """Why this profile cannot run yet ("" = it can): the first unpublished model's reason."""
        return next((s.unpublished for s in self.models.values() if s.unpublished), "")

    def get(self, role: str) -> ModelSpec | None:
        return self.models.get(role)


def _spec(role: str, raw: dict[str, Any]) -> ModelSpec:
    return ModelSpec(
        role=role,
        backend=str(raw["backend"]),
        repo_id=str(raw.get("repo_id", "")),
        revision=str(raw.get("revision", "")),
        local_dir=str(raw.get("local_dir", "")),
        files=dict(raw.get("files", {})),
        size_gb=float(raw.get("size_gb", 0.0)),
        vram_gb=float(raw.get("vram_gb", 0.0)),
        options={k: v for k, v in raw.items() if k not in _SPEC_FIELDS},
    )


def _resolve_role(raw: dict[str, Any], catalog: dict[str, Any]) -> dict[str, Any]:
    """Merge a role table over the catalog entry it names with ``model = "<key>"``."""
    key = raw.get("model")
    if key is None:
        return raw
    if not isinstance(key, str) or key not in catalog:
        raise KeyError(f"model {key!r} is not in the [models] catalog; known: {', '.join(sorted(catalog))}")
    return {**catalog[key], **{k: v for k, v in raw.items() if k != "model"}}


def _role_problems(role: str, raw: dict[str, Any]) -> list[str]:
    """What is wrong with a resolved role table: backend, spec field types, options, repo_id."""
    backend = raw.get("backend")
    if backend is None:
        return [f"no backend; one of {', '.join(BACKENDS)}"]
    if backend not in BACKENDS:
        return [f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}"]
    kind = BackendKind(backend)
    problems: list[str] = []
    for name, types in _SPEC_FIELDS.items():
        value = raw.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            want = "a number" if float in types else "a table" if dict in types else "a string"
            problems.append(f"{name} must be {want}, not {value!r}")
    options = {k: v for k, v in raw.items() if k not in _SPEC_FIELDS}
    problems += option_problems(kind, Role(role), options)
    if not raw.get("repo_id") and kind != BackendKind.REMOTE:
        problems.append("no repo_id")
    return problems


def _profile_problems(name: str, raw: Any, catalog: dict[str, Any]) -> list[str]:
    """Problems of one ``[profiles.<name>]`` table, each starting with the profile (and role)."""
    if not isinstance(raw, dict):
        return [f"profile {name}: must be a table"]
    problems: list[str] = []
    extra = sorted(k for k, v in raw.items() if isinstance(v, dict) and k not in ROLES)
    if extra:
        problems.append(f"profile {name}: unknown role(s) {', '.join(extra)}; roles are {', '.join(ROLES)}")
    if not isinstance(raw.get("description", ""), str):
        problems.append(f"profile {name}: description must be a string, not {raw['description']!r}")
    vram = raw.get("vram_gb", 0.0)
    if not isinstance(vram, (int, float)) or isinstance(vram, bool):
        problems.append(f"profile {name}: vram_gb must be a number, not {vram!r}")
    weights = raw.get("weights", ProfileWeights.UNDECLARED.value)
    if weights != ProfileWeights.UNDECLARED.value and weights not in WEIGHTS:
        problems.append(f"profile {name}: weights must be one of {', '.join(map(repr, WEIGHTS))}, not {weights!r}")
    for role in ROLES:
        if not isinstance(raw.get(role), dict):
            continue
        try:
            resolved = _resolve_role(raw[role], catalog)
        except KeyError as exc:
            problems.append(f"profile {name}.{role}: {exc.args[0]}")
            continue
        problems += [f"profile {name}.{role}: {why}" for why in _role_problems(role, resolved)]
    return problems


def _read(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML: {exc}") from None


def load_profiles(path: Path | None = None) -> dict[str, Profile]:
    """Every profile of the manifest, validated: ProfileError (one line) on the first problem."""
    path = path or manifest_path()
    data = _read(path)
    catalog = data.get("models", {})
    if not isinstance(catalog, dict):
        raise ProfileError(f"{path}: [models] must be a table of catalog entries")
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ProfileError(f"{path}: [profiles] must be a table of profiles")
    out: dict[str, Profile] = {}
    for name, raw in profiles.items():
        problems = _profile_problems(name, raw, catalog)
        if problems:
            raise ProfileError(f"{path}: {problems[0]}")
        models = {
            role: _spec(role, _resolve_role(raw[role], catalog))
            for role in ROLES
            if isinstance(raw.get(role), dict)
        }
        out[name] = Profile(name, str(raw.get("description", "")), float(raw.get("vram_gb", 0.0)), models,
                            coerce(ProfileWeights, raw.get("weights", ProfileWeights.UNDECLARED), "weights"))
    return out


def default_profile_name(path: Path | None = None) -> str:
    path = path or manifest_path()
    return str(_read(path).get("default_profile", "workstation"))


def load_profile(name: str | None = None, path: Path | None = None) -> Profile:
    profiles = load_profiles(path)
    name = name or default_profile_name(path)
    if name not in profiles:
        raise KeyError(f"unknown profile {name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[name]


def validate_manifest(path: Path | None = None) -> list[str]:
    """Problems in a manifest, one readable line each (empty list: the manifest is sound).

    Checks what would otherwise surface late, at download or load time: unknown roles and
    backends, dangling catalog references, a missing default profile, hub models without a
    repo id or without a pinned revision, and malformed sha256 values.
    """
    import re

    path = path or manifest_path()
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [f"{path}: cannot read the manifest: {exc}"]
    problems: list[str] = []
    catalog = data.get("models", {})
    raw_profiles = data.get("profiles", {})
    default = str(data.get("default_profile", "workstation"))
    if default not in raw_profiles:
        problems.append(f"default_profile {default!r} is not a profile")
    hex40, hex64 = re.compile(r"^[0-9a-f]{40}$"), re.compile(r"^[0-9a-f]{64}$")
    for pname, raw in raw_profiles.items():
        problems += _profile_problems(pname, raw, catalog)
        if not isinstance(raw, dict):
            continue
        for role in ROLES:
            if not isinstance(raw.get(role), dict):
                continue
            where = f"profile {pname}.{role}"
            try:
                resolved = _resolve_role(raw[role], catalog)
            except KeyError:
                continue  # reported above
            kind = resolved.get("backend")
            bundled, remote = kind == BackendKind.LITEMEDSAM, kind == BackendKind.REMOTE
            local_only = str(resolved.get("repo_id", "")).startswith("local/")
            if not (bundled or remote or local_only or resolved.get("unpublished")) and not hex40.match(str(resolved.get("revision", ""))):
                problems.append(f"{where}: revision {str(resolved.get('revision', '')) or '(none)'!r} "
                                "is not a pinned 40-hex commit")
            files = resolved.get("files", {})
            for fname, digest in (files.items() if isinstance(files, dict) else ()):
                if digest and not hex64.match(str(digest)):
                    problems.append(f"{where}: files[{fname!r}] is not a sha256 hex digest")
        if not any(isinstance(raw.get(r), dict) for r in ROLES):
            problems.append(f"profile {pname}: no models")
        if "weights" not in raw:
            problems.append(f"profile {pname}: no weights label; one of {', '.join(map(repr, WEIGHTS))}")
    return problems
