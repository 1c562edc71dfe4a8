#!/usr/bin/env bash
# Creates .venv beside the checkout and installs CARE Viewer with its test extras.
# Idempotent: re-running only installs what changed. Used by README and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# System libraries Qt needs: EGL/GL, fontconfig, xkbcommon and D-Bus even offscreen (tests), the
# xcb set for a real window. Installed when we are root with apt-get; otherwise named, so a
# user can install them with sudo.
QT_DEBS="libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libxcb-cursor0 libxcb-icccm4 \
libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0"
# The real PACS the tests talk to (Orthanc with its DICOMweb plugin, started by a fixture on loopback;
# the Debian service itself is never started) and dciodvfy, which validates every DICOM object we write.
TEST_DEBS="orthanc orthanc-dicomweb dicom3tools"
if command -v dpkg >/dev/null 2>&1; then
    need=""
    for p in $QT_DEBS $TEST_DEBS; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
    if [ -n "$need" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
        else
            echo "Qt needs these system packages: sudo apt-get install$need" >&2
        fi
    fi
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
