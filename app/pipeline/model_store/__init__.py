"""Model weights on disk: install state, hashing, fetch from the hub, air-gapped import, verify.

No Qt and no torch: the CLI (``care-viewer models ...``) and the GUI's settings page both drive
this module. ``huggingface_hub`` is imported only inside :func:`fetch_model`.

A model folder counts as *installed* only when every file it needs is present at its final name
(and at its known size). Imports copy into a hidden ``.import-*.tmp`` folder and rename it into
place only after every byte was re-read and hashed, so an interrupted copy never looks installed.
After a successful fetch or import the folder gets a ``.care-manifest.json`` (repo, revision and
every file's size and sha256) that :func:`verify_model` re-hashes against later.

A package; import from it, not from its modules (``from app.pipeline.model_store import X``).
Modules: ``records`` (the dataclasses), ``state`` (hashing, manifests, install state),
``verify``, ``importing`` (air-gapped import) and ``fetch`` (the hub).
"""
from __future__ import annotations

from .fetch import HubUnreachable, fetch_model, gated_message, hub_token
from .importing import find_source, import_model
from .records import (
    CARE_MANIFEST, CareManifest, FileRecord, ImportResult, ModelState, ModelStoreError, VerifyResult,
)
from .state import (
    bundled_asset, check_remote, distinct_specs, model_state, profile_states, read_care_manifest, remote_endpoint,
    served_model, sha256_file, write_care_manifest,
)
from .verify import verify_model

__all__ = [
    "CARE_MANIFEST", "CareManifest", "FileRecord", "HubUnreachable", "ImportResult", "ModelState",
    "ModelStoreError", "VerifyResult", "bundled_asset", "check_remote", "distinct_specs", "fetch_model",
    "find_source", "gated_message", "hub_token", "import_model", "model_state", "profile_states",
    "read_care_manifest", "remote_endpoint", "served_model", "sha256_file", "verify_model", "write_care_manifest",
]
