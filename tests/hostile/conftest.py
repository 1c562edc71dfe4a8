"""Shared helpers for the hostile-input tests: run the real CLI in a subprocess and measure it.

``run_cli(args, env=None, timeout=...)`` runs ``python -m app ARGS`` from the checkout
and returns ``CliResult(rc, stdout, stderr, peak_rss_mb)``; it also unpacks as the 4-tuple
``(rc, stdout, stderr, peak_rss_mb)``. The peak resident memory comes from ``os.wait4`` (the
command's own ``ru_maxrss``, taken by a small launcher process, see below), so each test
measures only its own command, never the pytest process or earlier children.
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


# Why a launcher: Linux carries a process's peak RSS across fork+exec (the exec'd child starts
# with its parent's high-water mark), so a child forked straight from a pytest process that
# has loaded models would report pytest's peak. The small launcher forks the command itself
# and reports the command's own wait4 status and ru_maxrss.
_LAUNCHER = """
import os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    os.execv(argv[0], argv)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as fp:
    fp.write(f"{status} {usage.ru_maxrss}")
"""


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
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage"
        out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(report), sys.executable, "-m", "app", *map(str, args)],
                stdout=out, stderr=err, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                env=full_env, cwd=str(cwd or REPO), start_new_session=True,
            )
            if stdin is not None:
                proc.stdin.write(stdin)  # type: ignore[union-attr]
                proc.stdin.close()  # type: ignore[union-attr]
            finished = _wait(proc.pid, timeout)
            seconds = time.monotonic() - start
            proc.returncode = 0  # reaped above; keeps Popen from waiting again
        stdout = out_path.read_bytes().decode("utf-8", "replace")
        stderr = err_path.read_bytes().decode("utf-8", "replace")
        if not finished or not report.exists():
            pytest.fail(f"care-viewer {' '.join(map(str, args))} still running after {timeout:.0f} s (killed)\n"
                        f"stdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}", pytrace=False)
        status, maxrss = (int(v) for v in report.read_text().split())
    return CliResult(os.waitstatus_to_exitcode(status), stdout, stderr, _max_rss_mb(maxrss), seconds)


def _wait(pid: int, timeout: float) -> bool:
    """True when the launcher exited in time; else its whole process group is killed."""
    deadline = time.monotonic() + timeout
    while True:
        wpid, _, _ = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return True
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.wait4(pid, 0)
            return False
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
