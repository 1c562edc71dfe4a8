#!/usr/bin/env bash
# Creates .venv beside the checkout and installs CARE Viewer with its test extras.
# `--check-system`: only report missing system packages (Qt libraries, test tools) and exit.
# Idempotent: re-running only installs what changed. Used by README and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# `setup.sh --check-system` only reports the missing system packages (never installs, no venv):
# exit 0 when none is missing, 1 otherwise.
CHECK_ONLY=0
if [ "${1:-}" = "--check-system" ]; then CHECK_ONLY=1; fi
# System libraries Qt needs: EGL/GL, fontconfig, xkbcommon and D-Bus even offscreen (tests), the
# xcb set for a real window. Installed when we are root with apt-get; otherwise named, so a
# user can install them with sudo.
QT_DEBS="libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 \
libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0"
# The real PACS the tests talk to (Orthanc with its DICOMweb plugin, started by a fixture on loopback;
# the Debian service itself is never started) and dciodvfy, which validates every DICOM object we write.
# Only the tests need them: the app runs without.
TEST_DEBS="orthanc orthanc-dicomweb dicom3tools"
# The packages of "$@" that dpkg does not list as installed (a removed package whose config
# files remain is not installed), space-separated; empty when all are.
missing_debs() {
    local p status out=""
    for p in "$@"; do
        # Captured, not piped into grep -q: under pipefail an early grep exit could SIGPIPE dpkg.
        status=$(dpkg -s "$p" 2>/dev/null || true)
        case "$status" in
            *"Status: install ok installed"*) ;;
            *) out="$out $p" ;;
        esac
    done
    printf '%s' "${out# }"
}
need_qt=""
need_test=""
if command -v dpkg >/dev/null 2>&1; then
    # shellcheck disable=SC2086  # word splitting of the package lists is intended
    need_qt=$(missing_debs $QT_DEBS)
    # shellcheck disable=SC2086
    need_test=$(missing_debs $TEST_DEBS)
fi
if [ -n "$need_qt$need_test" ]; then
    if [ "$CHECK_ONLY" = 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need_qt $need_test >/dev/null
    else
        if [ -n "$need_qt" ]; then
            echo "Qt (the viewer, and the tests even offscreen) needs these system libraries:" \
                 "sudo apt-get install $need_qt" >&2
        fi
        if [ -n "$need_test" ]; then
            echo "Only the tests need these tools (orthanc, orthanc-dicomweb: the local PACS the PACS" \
                 "tests start; dicom3tools: dciodvfy, which validates the DICOM files the tests write):" \
                 "sudo apt-get install $need_test" >&2
        fi
        if [ "$CHECK_ONLY" = 1 ]; then exit 1; fi
    fi
fi
if [ "$CHECK_ONLY" = 1 ]; then
    if command -v dpkg >/dev/null 2>&1; then
        echo "system packages: all present"
    else
        echo "system packages: not checked (no dpkg; install Qt's libraries with your package manager)"
    fi
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install --quiet --upgrade pip
# torch/torchvision first, pinned to the pair that has a working torchvision wheel here
# (timm for LiteMedSAM and the SAM3 image processor need torchvision). On a CUDA
# workstation pick the matching wheel index instead (see README, "GPU").
if ! .venv/bin/python -c "import torch, torchvision" >/dev/null 2>&1; then
    $PIP install --quiet "torch==${CARE_TORCH_VERSION:-2.14.1}" "torchvision==${CARE_TORCHVISION_VERSION:-0.29.1}"
fi
$PIP install --quiet -e ".[dev]"
echo "CARE Viewer installed in $(pwd)/.venv"
