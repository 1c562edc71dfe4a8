"""Per-endpoint image consent (JSON in the config dir) and API-key lookup (env, keyring)."""
from __future__ import annotations

import io
import json
import stat
from datetime import datetime, timezone

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import PasswordDeleteError

from app.pipeline.remote import consent as consent_mod
from app.pipeline.remote.consent import ConsentStore, consent_statement, ensure_consent_cli
from app.pipeline.remote.secrets import (
    KEYRING_SERVICE,
    ApiKeyRef,
    KeyStoreError,
    delete_api_key,
    resolve_api_key,
    store_api_key,
)

EP = "https://ai.dept.example/v1"


class MemoryKeyring(KeyringBackend):
    """A real keyring backend kept in memory (the container has no Secret Service)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("not found")


@pytest.fixture()
def memory_keyring():
    previous = keyring.get_keyring()
    kr = MemoryKeyring()
    keyring.set_keyring(kr)
    yield kr
    keyring.set_keyring(previous)


@pytest.fixture()
def no_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def test_consent_grant_persists_per_canonical_endpoint(isolated_config):
    store = ConsentStore()
    assert not store.has_consent(EP)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    rec = store.grant("https://AI.dept.example:443/v1/", who="dr.a", when=when, via="gui")
    assert rec.endpoint == EP and rec.granted_at == "2026-01-02T03:04:05+00:00"
    # A new store (new process) reads the same file; other endpoints are unaffected.
    again = ConsentStore()
    assert again.has_consent(EP) and again.get(EP).granted_by == "dr.a"
    assert not again.has_consent("https://ai.dept.example:8443/v1")
    path = isolated_config / "remote_consent.json"
    data = json.loads(path.read_text())
    assert list(data["endpoints"]) == [EP]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert again.revoke(EP) and not ConsentStore().has_consent(EP) and not again.revoke(EP)


def test_statement_names_the_server_and_patient_images():
    text = consent_statement(EP)
    assert EP in text and "Patient images" in text


def test_changed_statement_invalidates_consent(monkeypatch):
    store = ConsentStore()
    store.grant(EP, who="dr.a")
    monkeypatch.setattr(consent_mod, "consent_statement", lambda url: f"new wording for {url}")
    assert not store.has_consent(EP)


def test_corrupt_consent_file_means_no_consent_and_is_rewritten(isolated_config):
    isolated_config.mkdir(parents=True)
    (isolated_config / "remote_consent.json").write_text("{not json")
    store = ConsentStore()
    assert not store.has_consent(EP)
    store.grant(EP, who="dr.b")
    assert ConsentStore().has_consent(EP)


def test_cli_consent_flow():
    store = ConsentStore()
    # Non-interactive without the flag: no consent, nothing recorded.
    assert not ensure_consent_cli(store, EP, assume_yes=False, stdin=io.StringIO("y\n"))
    assert not store.has_consent(EP)
    asked = []
    assert not ensure_consent_cli(store, EP, assume_yes=False, input_fn=lambda p: asked.append(p) or "n")
    assert EP in asked[0] and not store.has_consent(EP)
    assert ensure_consent_cli(store, EP, assume_yes=False, input_fn=lambda p: "yes")
    assert store.get(EP).via == "cli-prompt"
    other = "https://other.example/v1"
    assert ensure_consent_cli(store, other, assume_yes=True)
    assert store.get(other).via == "--yes-send-images"


def test_key_from_env_wins_over_keyring(monkeypatch, memory_keyring):
    memory_keyring.set_password(KEYRING_SERVICE, EP, "from-keyring")
    monkeypatch.setenv("CARE_DEPT_API_KEY", "from-env")
    got = resolve_api_key(ApiKeyRef(env="CARE_DEPT_API_KEY"), EP)
    assert got.value == "from-env" and got.source == "env:CARE_DEPT_API_KEY"
    assert "from-env" not in repr(got)
    monkeypatch.delenv("CARE_DEPT_API_KEY")
    got = resolve_api_key(ApiKeyRef(env="CARE_DEPT_API_KEY"), EP)
    assert got.value == "from-keyring" and got.source == "keyring"


def test_store_and_delete_key_in_keyring(memory_keyring, isolated_config):
    store_api_key(EP, "  sk-abc  ")
    assert memory_keyring.store[(KEYRING_SERVICE, EP)] == "sk-abc"
    assert resolve_api_key(None, EP).value == "sk-abc"
    # Never written to a plain file in the config dir.
    assert not isolated_config.exists() or all("sk-abc" not in p.read_text() for p in isolated_config.rglob("*") if p.is_file())
    assert delete_api_key(EP) and not delete_api_key(EP)
    assert resolve_api_key(None, EP).value is None


def test_no_keyring_backend_is_handled(no_keyring):
    got = resolve_api_key(ApiKeyRef(env="CARE_DEPT_API_KEY"), EP)
    assert got.value is None and got.source == "none" and "keyring" in got.note
    with pytest.raises(KeyStoreError) as ei:
        store_api_key(EP, "sk-abc", env_hint="CARE_DEPT_API_KEY")
    assert EP in str(ei.value) and "CARE_DEPT_API_KEY" in str(ei.value)
    assert not delete_api_key(EP)
