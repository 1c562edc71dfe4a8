"""API keys for remote endpoints: from an environment variable named in the profile, else
the OS keyring (service ``care-viewer``, username = the endpoint URL). Never from, or to, a
plain config file; never logged or put in a run record."""
from __future__ import annotations

import os
from dataclasses import dataclass

KEYRING_SERVICE = "care-viewer"


class KeyStoreError(RuntimeError):
    """The key could not be stored (e.g. no OS keyring on this machine); message is user-facing."""


@dataclass(frozen=True)
class ApiKeyRef:
    """Where to look for an endpoint's key. ``env`` comes from the profile's ``api_key_env``."""

    env: str = ""
    use_keyring: bool = True


@dataclass(frozen=True)
class ResolvedKey:
    value: str | None
    source: str  # "env:NAME" | "keyring" | "none"
    note: str = ""  # why the keyring was not consulted/usable, for `models list`

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"ResolvedKey(value={'***' if self.value else None}, source={self.source!r}, note={self.note!r})"


def _keyring():
    try:
        import keyring  # noqa: PLC0415 - optional at run time
    except ImportError:
        return None
    return keyring


def resolve_api_key(ref: ApiKeyRef | ResolvedKey | str | None, endpoint_url: str) -> ResolvedKey:
    """Environment first (an explicit per-session override), then the keyring; a missing
    key is not an error here (local vLLM servers often run without one). A ResolvedKey
    (a key the caller already holds, e.g. typed into a settings dialog) is used as is; a
    str is the name of the environment variable."""
    if isinstance(ref, ResolvedKey):
        return ref
    if isinstance(ref, str):
        ref = ApiKeyRef(env=ref)
    ref = ref or ApiKeyRef()
    if ref.env:
        value = os.environ.get(ref.env, "").strip()
        if value:
            return ResolvedKey(value, f"env:{ref.env}")
    if not ref.use_keyring:
        return ResolvedKey(None, "none", "keyring lookup disabled")
    kr = _keyring()
    if kr is None:
        return ResolvedKey(None, "none", "keyring package not installed")
    try:
        value = kr.get_password(KEYRING_SERVICE, endpoint_url)
    except Exception as exc:  # noqa: BLE001 - NoKeyringError, locked/dbus-less backends, ...
        return ResolvedKey(None, "none", f"no usable OS keyring ({exc.__class__.__name__})")
    if value:
        return ResolvedKey(value, "keyring")
    return ResolvedKey(None, "none", "no key in the environment or the keyring")


def store_api_key(endpoint_url: str, key: str, env_hint: str = "") -> None:
    kr = _keyring()
    if not key.strip():
        raise KeyStoreError("refusing to store an empty API key")
    hint = f"; set the environment variable {env_hint} instead" if env_hint else ""
    if kr is None:
        raise KeyStoreError(f"cannot store the API key for {endpoint_url}: keyring package not installed{hint}")
    try:
        kr.set_password(KEYRING_SERVICE, endpoint_url, key.strip())
    except Exception as exc:  # noqa: BLE001
        raise KeyStoreError(
            f"cannot store the API key for {endpoint_url}: no usable OS keyring ({exc.__class__.__name__}){hint}"
        ) from None


def delete_api_key(endpoint_url: str) -> bool:
    """True if a stored key was removed."""
    kr = _keyring()
    if kr is None:
        return False
    try:
        kr.delete_password(KEYRING_SERVICE, endpoint_url)
    except Exception:  # noqa: BLE001 - PasswordDeleteError (absent) or no backend
        return False
    return True
