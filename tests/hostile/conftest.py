"""Shared helpers for the hostile-input tests: run the real CLI in a subprocess and measure it.

``run_cli(args, env=None, timeout=...)`` runs ``python -m app ARGS`` from the checkout
and returns ``CliResult(rc, stdout, stderr, peak_rss_mb)``; it also unpacks as the 4-tuple
``(rc, stdout, stderr, peak_rss_mb)``. The peak resident memory comes from ``os.wait4`` (the
child's own ``ru_maxrss``), so each test measures only its own child, never earlier ones.
A child that outlives ``timeout`` is killed (its whole process group) and the test fails with
what it printed so far: a hang is a failure, never a stuck suite.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliResult:
    rc: int
    stdout: str
    stderr: str
    peak_rss_mb: float
    seconds: float

    def __iter__(self) -> Iterator:  # rc, stdout, stderr, peak = run_cli(...)
        return iter((self.rc, self.stdout, self.stderr, self.peak_rss_mb))


def _max_rss_mb(ru_maxrss: int) -> float:
    # Linux reports kilobytes, macOS bytes.
    return ru_maxrss / (1024 * 1024) if sys.platform == "darwin" else ru_maxrss / 1024


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    timeout: float = 120.0,
    cwd: str | os.PathLike | None = None,
    stdin: bytes | None = None,
) -> CliResult:
    """Run ``care-viewer ARGS`` in a fresh interpreter; ``env`` entries override os.environ
    (which the per-test fixtures already point at this test's own data/config folders)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("QT_QPA_PLATFORM", "offscreen")
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", *map(str, args)],
            stdout=out, stderr=err, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            env=full_env, cwd=str(cwd or REPO), start_new_session=True,
        )
        if stdin is not None:
            proc.stdin.write(stdin)  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
        status, usage = _wait4(proc.pid, timeout)
        seconds = time.monotonic() - start
        proc.returncode = _returncode(status)  # so Popen does not try to reap it again
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if usage is None:
        pytest.fail(f"care-viewer {' '.join(map(str, args))} still running after {timeout:.0f} s (killed)\n"
                    f"stdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}", pytrace=False)
    return CliResult(proc.returncode, stdout, stderr, _max_rss_mb(usage.ru_maxrss), seconds)


def _returncode(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def _wait4(pid: int, timeout: float):  # type: ignore[no-untyped-def]
    """(status, rusage) of the child, or (status, None) when it had to be killed."""
    deadline = time.monotonic() + timeout
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return status, usage
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, status, _ = os.wait4(pid, 0)
            return status, None
        time.sleep(0.05)


def assert_one_line_error(result: CliResult, *needles: str) -> str:
    """The failure is reported as one ``error:``/reason line naming the file, never a traceback."""
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines, f"nothing on stderr (rc={result.rc}, stdout={result.stdout!r})"
    matching = [ln for ln in lines if all(n in ln for n in needles)]
    assert matching, f"no stderr line contains {needles}: {result.stderr!r}"
    return matching[0]


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli
