"""scripts/setup.sh's system-package check, run for real with a fake ``dpkg`` on PATH.

``setup.sh --check-system`` runs only the detection (never apt-get, no venv), so each case
states which packages the fake dpkg reports installed and reads what the script says.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "setup.sh"
QT = ("libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
      "libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0").split()
TEST = ["orthanc", "orthanc-dicomweb", "dicom3tools"]

# `dpkg -s PKG`: installed when PKG is in $FAKE_INSTALLED, config files only (removed) when in
# $FAKE_REMOVED, else unknown (exit 1), as dpkg does. Every call is logged.
FAKE_DPKG = """#!/bin/sh
echo "$*" >> "$FAKE_LOG"
[ "$1" = "-s" ] || exit 2
for p in $FAKE_INSTALLED; do
    [ "$p" = "$2" ] && printf 'Package: %s\\nStatus: install ok installed\\n' "$2" && exit 0
done
for p in $FAKE_REMOVED; do
    [ "$p" = "$2" ] && printf 'Package: %s\\nStatus: deinstall ok config-files\\n' "$2" && exit 0
done
echo "dpkg-query: package '$2' is not installed" >&2
exit 1
"""
FAKE_APT = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_LOG"
"""


@pytest.fixture
def fakebin(tmp_path) -> Path:
    """A PATH holding only the fake dpkg / apt-get and the few real tools the script calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("dpkg", FAKE_DPKG), ("apt-get", FAKE_APT)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for tool in ("dirname", "id", "sh"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return bin_dir


def check(fakebin: Path, installed=(), removed=()) -> subprocess.CompletedProcess:
    log = fakebin.parent / "calls.log"
    env = {"PATH": str(fakebin), "HOME": str(fakebin.parent / "home"), "FAKE_LOG": str(log),
           "FAKE_INSTALLED": " ".join(installed), "FAKE_REMOVED": " ".join(removed)}
    return subprocess.run([shutil.which("bash"), str(SCRIPT), "--check-system"], env=env, cwd=fakebin.parent,
                          capture_output=True, text=True, timeout=60)


def calls(fakebin: Path) -> list[str]:
    log = fakebin.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_only_test_tools_missing_does_not_blame_qt(fakebin):
    res = check(fakebin, installed=QT)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "Qt" not in lines[0]
    assert lines[0].startswith("Only the tests need these tools (orthanc, orthanc-dicomweb: the local PACS")
    assert "dicom3tools: dciodvfy" in lines[0]
    assert lines[0].endswith("sudo apt-get install orthanc orthanc-dicomweb dicom3tools")
    assert not any(c.startswith("apt-get") for c in calls(fakebin))  # --check-system never installs, even as root


def test_missing_qt_library_is_named_alone(fakebin):
    res = check(fakebin, installed=[p for p in QT + TEST if p != "libxcb-cursor0"])
    assert res.returncode == 1
    assert res.stderr.splitlines() == ["Qt (the viewer, and the tests even offscreen) needs these system libraries: "
                                       "sudo apt-get install libxcb-cursor0"]


def test_both_groups_missing_are_listed_separately(fakebin):
    res = check(fakebin, installed=QT[2:] + TEST[1:])
    qt_line, test_line = res.stderr.splitlines()
    assert res.returncode == 1
    assert qt_line.endswith("sudo apt-get install libegl1 libgl1")
    assert test_line.endswith("sudo apt-get install orthanc")
    assert sorted(c.split()[1] for c in calls(fakebin)) == sorted(QT + TEST)  # each package asked once


def test_removed_package_with_config_files_left_counts_as_missing(fakebin):
    res = check(fakebin, installed=QT + TEST[:2], removed=["dicom3tools"])
    assert res.returncode == 1 and res.stderr.strip().endswith("sudo apt-get install dicom3tools")


def test_all_present_says_so_and_is_idempotent(fakebin):
    first, second = check(fakebin, installed=QT + TEST), check(fakebin, installed=QT + TEST)
    for res in (first, second):
        assert res.returncode == 0 and res.stderr == ""
        assert res.stdout == "system packages: all present\n"


def test_without_dpkg_nothing_is_claimed_missing(fakebin):
    os.remove(fakebin / "dpkg")
    res = check(fakebin)
    assert res.returncode == 0 and res.stderr == ""
    assert res.stdout.startswith("system packages: not checked (no dpkg")
