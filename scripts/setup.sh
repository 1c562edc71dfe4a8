#!/usr/bin/env bash
# Creates .venv beside the checkout and installs CARE Viewer with its test extras.
# Idempotent: re-running only installs what changed. Used by README and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
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
