"""``care-viewer models list|fetch|import|verify``: manage model weights (headless, no Qt)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "list, download, import (air-gapped) and verify model weights"

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_WEIGHTS_MISSING = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="{list,fetch,import,verify}")
    p = sub.add_parser("list", help="every profile and model: installed or not, sizes, VRAM, path, revision")
    p.add_argument("--profile", help="only this profile (and health-check its remote endpoints)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    # Listing is offline by default: a plain `models list` must not tell a hosted API (or the
    # DNS resolver) that this machine exists. Contacting endpoints is an explicit request.
    p.add_argument("--check", action="store_true", help="health-check the remote endpoints of every listed profile")
    p.add_argument("--no-check", action="store_true", help="with --profile: do not contact its remote endpoints")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="health-check timeout per remote endpoint in seconds (default 3)")

    p = sub.add_parser("fetch", help="download a profile's models from the Hugging Face hub")
    p.add_argument("profile", nargs="?", help="profile name (default: the manifest's default profile)")
    p.add_argument("--force", action="store_true", help="download again even if installed")

    p = sub.add_parser("import", help="install models from a folder (USB disk, copied HF cache): air-gapped machines")
    p.add_argument("dir", type=Path, help="folder holding <org>--<name>, <org>/<name> or models--<org>--<name> folders")
    p.add_argument("--profile", help="only this profile's models (default: every model of every profile)")
    p.add_argument("--force", action="store_true", help="replace models that are already installed")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("verify", help="re-hash installed files against .care-manifest.json and the profile")
    p.add_argument("profile", nargs="?", help="profile (default: every model present on disk)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


class _Abort(Exception):
    """Stop the subcommand with an exit code; the message was already printed."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _err(msg: str) -> None:
    print(f"care-viewer models: {msg}", file=sys.stderr)


def _load():
    """(profiles, default name, models dir) for the manifest in effect, or a one-line error."""
    from app.pipeline import profiles as P

    path = P.manifest_path()
    try:
        profs = P.load_profiles(path)
        default = P.default_profile_name(path)
    except FileNotFoundError:
        raise _Abort(_fail(f"manifest not found: {path}", EXIT_UNREADABLE))
    except P.ProfileError as exc:  # a typo in the manifest: its one line names file, profile and field
        raise _Abort(_fail(str(exc), EXIT_USAGE))
    except Exception as exc:  # unreadable file (permissions, not UTF-8, ...)
        raise _Abort(_fail(f"{path}: {exc}", EXIT_UNREADABLE))
    return profs, default, P.models_dir()


def _fail(msg: str, code: int) -> int:
    _err(msg)
    return code


def _pick(profs: dict, name: str | None):
    if name is None:
        return None
    if name not in profs:
        raise _Abort(_fail(f"unknown profile {name!r}; known: {', '.join(sorted(profs))}", EXIT_USAGE))
    return profs[name]


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes < 1e8 else f"{n_bytes / 1e9:.1f} GB"


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "models_command", None)
    if cmd is None:
        _err("choose one of: list, fetch, import, verify (see `care-viewer models -h`)")
        return EXIT_USAGE
    try:
        return {"list": _list, "fetch": _fetch, "import": _import, "verify": _verify}[cmd](args)
    except _Abort as abort:
        return abort.code


# --- list --------------------------------------------------------------------------------------
def _health_key(st) -> str:
    """One health check per endpoint + served model."""
    from app.pipeline.model_store import served_model

    return f"{st.endpoint}#{served_model(st.spec)}"


def _health(states: list, timeout_s: float) -> dict[str, dict]:
    """Health of every distinct remote endpoint+model, checked concurrently; a check that
    outlives its timeout (a DNS lookup is not bounded by the socket timeout) is reported as
    such rather than waited for."""
    import threading

    from app.pipeline.model_store import check_remote, served_model

    jobs = {}
    for st in states:
        if st.status == "remote":
            jobs.setdefault(_health_key(st), st.spec)
    results: dict[str, dict] = {}

    def one(key: str, spec) -> None:
        h = check_remote(spec, timeout_s)
        want = served_model(spec)
        results[key] = {"reachable": h.reachable, "latency_ms": round(h.latency_ms, 1), "error": h.error,
                        "served_models": h.served_models, "serves_model": h.serves(want) if h.reachable else None}

    threads = [threading.Thread(target=one, args=(k, s), daemon=True) for k, s in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout_s + 2.0)
    for key in jobs:
        results.setdefault(key, {"reachable": False, "latency_ms": None, "error": f"no reply within {timeout_s:g} s",
                                 "served_models": [], "serves_model": None})
    return results


def _health_text(h: dict | None) -> str:
    if h is None:
        return "not checked (--check or --profile to contact it)"
    if not h["reachable"]:
        return f"UNREACHABLE: {h['error']}"
    serves = "" if h["serves_model"] in (None, True) else ", but does not serve this model"
    if h["serves_model"] is None and not h["served_models"]:
        serves = ""
    return f"reachable ({h['latency_ms']:.0f} ms){serves}"


def _list(args: argparse.Namespace) -> int:
    from app.pipeline.disclosure import weights_disclosure
    from app.pipeline.model_store import profile_states

    profs, default, base = _load()
    chosen = [_pick(profs, args.profile)] if args.profile else list(profs.values())
    out = []
    all_states = {prof.name: profile_states(prof, base) for prof in chosen}
    check = args.check or (bool(args.profile) and not args.no_check)
    health = _health([s for st in all_states.values() for s in st], args.timeout) if check else {}
    for prof in chosen:
        states = all_states[prof.name]
        models = []
        for st in states:
            d = st.to_dict()
            if st.status == "remote":
                d["health"] = health.get(_health_key(st))
            models.append(d)
        out.append({"name": prof.name, "default": prof.name == default, "description": prof.description,
                    "vram_gb": prof.vram_gb, "installed": all(s.installed for s in states),
                    "weights": prof.weights.value, "weights_disclosure": weights_disclosure(prof),
                    "unavailable": prof.unpublished, "models": models})
    if args.json:
        print(json.dumps({"models_dir": str(base), "default_profile": default, "profiles": out}, indent=2))
        return EXIT_OK
    print(f"models folder: {base}")
    for prof in out:
        flag = "ready" if prof["installed"] else "not ready"
        if prof["unavailable"]:  # a slot for unpublished weights: nothing to fetch, say why
            flag = f"unavailable ({prof['unavailable']})"
        if prof["installed"] and any(m.get("health") and not m["health"]["reachable"] for m in prof["models"]):
            flag = "installed, but a remote endpoint is unreachable"
        tag = " (default)" if prof["default"] else ""
        vram = f"GPU >= {prof['vram_gb']:g} GB" if prof["vram_gb"] else "no GPU needed"
        print(f"\n{prof['name']}{tag}: {flag}, {vram}\n  {prof['description']}\n"
              f"  weights: {prof['weights']}: {prof['weights_disclosure']}")
        for m in prof["models"]:
            if m["status"] == "remote":
                print(f"  {'+'.join(m['roles']):<22} {'remote':<10} {m['repo_id']}  at {m['endpoint']}")
                print(f"  {'':<22} {_health_text(m.get('health'))}")
                continue
            rev = "@" + m["revision"][:12] if m["revision"] else ""
            expected = _size(m["expected_gb"] * 1e9) if m["expected_gb"] else "?"
            size = f"{_size(m['size_bytes'])} of {expected}"
            extra = " [gated: needs HF login]" if m["gated"] and not m["installed"] else ""
            if m["status"] == "unavailable":
                extra = " [not downloadable]"
            print(f"  {'+'.join(m['roles']):<22} {m['status']:<10} {m['repo_id']}{rev}  "
                  f"disk {size}  VRAM ~{m['vram_gb']:g} GB{extra}")
            print(f"  {'':<22} {m['path']}" + (f"  ({m['detail']})" if m["detail"] and not m["installed"] else ""))
    return EXIT_OK


# --- fetch -------------------------------------------------------------------------------------
def _fetch(args: argparse.Namespace) -> int:
    from app.pipeline.model_store import (HubUnreachable, ModelStoreError, fetch_model, gated_message, hub_token,
                                          profile_states)

    profs, default, base = _load()
    prof = _pick(profs, args.profile or default)
    failed = 0
    states = profile_states(prof, base)
    # Gated repos without a token fail before any network traffic, and are reported even when
    # the hub turns out to be unreachable for the others.
    token = hub_token() if any(s.spec.gated for s in states) else None
    for state in [s for s in states if s.spec.gated and not token and not s.installed]:
        _err(gated_message(state.spec, have_token=False))
        failed += 1
        states.remove(state)
    for state in states:
        try:
            print(fetch_model(state.spec, base, force=args.force, log=print), flush=True)
        except HubUnreachable as exc:
            _err(str(exc))
            return EXIT_WEIGHTS_MISSING  # every other model would fail the same way
        except ModelStoreError as exc:
            _err(str(exc))
            failed += 1
    if failed:
        _err(f"profile {prof.name}: {failed} model(s) not fetched")
        return EXIT_WEIGHTS_MISSING
    print(f"profile {prof.name}: all models installed in {base}")
    return EXIT_OK


# --- import ------------------------------------------------------------------------------------
def _import(args: argparse.Namespace) -> int:
    from app.pipeline.model_store import distinct_specs, import_model

    profs, _, base = _load()
    src: Path = args.dir.expanduser()
    if not src.is_dir():
        return _fail(f"{src}: not a folder", EXIT_UNREADABLE)
    chosen = [_pick(profs, args.profile)] if args.profile else list(profs.values())
    results = []
    for spec in distinct_specs(chosen):
        if spec.local_only and not args.profile:
            continue  # tiny test checkpoints: only when a profile asks for them explicitly
        results.append(import_model(src, spec, base, force=args.force, log=None if args.json else print))
    if args.json:
        print(json.dumps({"source": str(src), "models_dir": str(base), "results": [r.to_dict() for r in results]},
                         indent=2))
    else:
        for r in results:
            print(f"{r.status:<9} {r.spec.repo_id}: {r.reason}")
    imported = sum(r.status == "imported" for r in results)
    failed = [r for r in results if r.status == "failed"]
    if not args.json:
        print(f"{imported} imported, {len(results) - imported - len(failed)} skipped, {len(failed)} failed")
    if failed:
        return EXIT_UNREADABLE
    if not any(r.source for r in results):  # nothing under DIR matched any model
        _err(f"no model folders found under {src}")
        return EXIT_UNREADABLE
    return EXIT_OK


# --- verify ------------------------------------------------------------------------------------
def _verify(args: argparse.Namespace) -> int:
    from app.pipeline.model_store import distinct_specs, model_state, verify_model

    profs, _, base = _load()
    if args.profile:
        specs = distinct_specs([_pick(profs, args.profile)])
    else:  # everything on disk; models of profiles you never installed are not an error
        specs = [s for s in distinct_specs(profs.values())
                 if model_state(s, base).status not in ("missing", "unavailable") or s.bundled]
    results = [verify_model(s, base) for s in specs]
    bad = [r for r in results if not r.ok]
    if args.json:
        print(json.dumps({"models_dir": str(base), "ok": not bad, "results": [r.to_dict() for r in results]},
                         indent=2))
    else:
        for r in results:
            where = "remote" if r.status == "remote" else f"({r.checked} files hashed)  {r.path}"
            print(f"{r.status:<10} {r.spec.repo_id}  {where}")
            for p in r.problems:
                print(f"    ERROR {p}")
            for w in r.warnings:
                print(f"    note  {w}")
    if bad:
        names = ", ".join(f"{r.spec.repo_id} ({r.status}: {r.problems[0].split(':')[0]})" for r in bad)
        _err(f"{len(bad)} model(s) failed verification: {names}")
        return EXIT_WEIGHTS_MISSING
    if not results:
        print("no installed models to verify")
    return EXIT_OK
