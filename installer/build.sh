#!/usr/bin/env bash
# Build the CARE Viewer one-folder bundle dist/care-viewer/ and its Linux .tar.gz.
#
#   installer/build.sh [--variant cpu|cuda] [--python PY] [--no-selftest] [--no-tar]
#
#   --variant cpu   (default) CPU-only torch: runs on any x86-64 machine, ~1/4 of the size.
#                   Built in a separate venv (build/venv-cpu, created on first use) because
#                   the CUDA torch wheel cannot even import without its NVIDIA libraries.
#   --variant cuda  the torch of the project venv as it is (CUDA wheel + nvidia-* libraries):
#                   uses an NVIDIA GPU when the target machine has a driver, else the CPU.
#   --python PY     interpreter of the venv to build the cuda variant from (default .venv/bin/python)
#
# Environment (cpu variant): CARE_CPU_TORCH (default "torch==2.13.0+cpu"), CARE_CPU_TORCHVISION
# (default "torchvision==0.28.0"), CARE_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu:
# also the source of a matching CPU torchvision; without it PyPI's torchvision is patched, see
# installer/patch_torchvision_cpu.py), CARE_BUILD_VENV (default build/venv-cpu).
# See installer/README.md for what ends up where, Windows/macOS, and deployment.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

VARIANT=cpu
PY=""
SELFTEST=1
TAR=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --variant) VARIANT="$2"; shift 2 ;;
        --python) PY="$2"; shift 2 ;;
        --no-selftest) SELFTEST=0; shift ;;
        --no-tar) TAR=0; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 1 ;;
    esac
done
[[ "$VARIANT" == cpu || "$VARIANT" == cuda ]] || { echo "build.sh: --variant must be cpu or cuda" >&2; exit 1; }

T0=$(date +%s)
say() { printf '\n== [%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
PROJECT_PY="$REPO/.venv/bin/python"

# ---------------------------------------------------------------------------------------------
# 1. The build interpreter
# ---------------------------------------------------------------------------------------------
if [[ "$VARIANT" == cuda ]]; then
    PY="${PY:-$PROJECT_PY}"
else
    VENV="${CARE_BUILD_VENV:-$REPO/build/venv-cpu}"
    PY="$VENV/bin/python"
    if [[ ! -f "$VENV/.care-ready" ]]; then
        say "creating the CPU build venv $VENV"
        BASE_PY=$("$PROJECT_PY" -c 'import sys; print(sys._base_executable)' 2>/dev/null || command -v python3)
        rm -rf "$VENV"
        "$BASE_PY" -m venv "$VENV"
        INDEX=()
        [[ -n "${CARE_TORCH_INDEX:-}" ]] && INDEX=(--extra-index-url "$CARE_TORCH_INDEX")
        "$PY" -m pip install -q "${INDEX[@]}" "${CARE_CPU_TORCH:-torch==2.13.0+cpu}"
        # A CPU torchvision from CARE_TORCH_INDEX when given; else PyPI's (its C++ ops need CUDA
        # torch, so it is patched below). --no-deps: it must not pull torch back in.
        "$PY" -m pip install -q --no-deps "${INDEX[@]}" "${CARE_CPU_TORCHVISION:-torchvision==0.28.0}"
        # Everything else from pyproject; torch/torchvision are satisfied and stay as they are.
        "$PY" -m pip install -q -e "$REPO[installer]" psutil
        touch "$VENV/.care-ready"
    fi
    if ! "$PY" -c 'import torchvision' >/dev/null 2>&1; then
        say "patching PyPI torchvision for CPU torch"
        "$PY" "$REPO/installer/patch_torchvision_cpu.py" "$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        "$PY" -c 'import torchvision' || { echo "build.sh: torchvision still does not import" >&2; exit 1; }
    fi
    if "$PY" -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)'; then
        echo "build.sh: $PY has a CUDA torch; the cpu variant needs a CPU wheel (CARE_CPU_TORCH)" >&2; exit 1
    fi
fi
"$PY" -c 'import PyInstaller' 2>/dev/null || "$PY" -m pip install -q "pyinstaller>=6.0"
TORCH=$("$PY" -c 'import torch; print(torch.__version__)')
say "variant $VARIANT: $("$PY" --version), torch $TORCH"

# ---------------------------------------------------------------------------------------------
# 2. Build inputs: tiny self-test checkpoints and the PNG icon
# ---------------------------------------------------------------------------------------------
TINY="$REPO/build/tiny-models-$VARIANT"
say "tiny checkpoints -> $TINY"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$PY" - "$TINY" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from app.devtools.tiny_models import ensure_tiny_models
out = ensure_tiny_models(Path(sys.argv[1]))
print("\n".join(str(p) for p in sorted(out.glob("tiny-*"))))
PYEOF

mkdir -p build/icon
say "icon: resources/icons/care-viewer.svg -> build/icon/care-viewer.png"
QT_QPA_PLATFORM=offscreen "$PY" - <<'PYEOF'
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer
app = QGuiApplication([])
renderer = QSvgRenderer("resources/icons/care-viewer.svg")
assert renderer.isValid(), "care-viewer.svg is not a valid SVG"
img = QImage(256, 256, QImage.Format.Format_ARGB32)
img.fill(Qt.GlobalColor.transparent)
p = QPainter(img); renderer.render(p); p.end()
assert img.save("build/icon/care-viewer.png"), "cannot write build/icon/care-viewer.png"
try:  # Windows .ico for the EXE (Pillow is a transformers dependency)
    from PIL import Image
    Image.open("build/icon/care-viewer.png").save("build/icon/care-viewer.ico", sizes=[(16, 16), (32, 32), (48, 48), (256, 256)])
except Exception as exc:
    print(f"no .ico: {exc}")
PYEOF

# ---------------------------------------------------------------------------------------------
# 3. PyInstaller
# ---------------------------------------------------------------------------------------------
say "PyInstaller (several minutes)"
rm -rf dist/care-viewer
CARE_BUILD_VARIANT="$VARIANT" CARE_BUILD_TINY_DIR="$TINY" \
    "$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath dist --workpath "build/pyinstaller-$VARIANT" installer/care_viewer.spec

BUNDLE=dist/care-viewer
install -Dm644 installer/care-viewer.desktop "$BUNDLE/share/applications/care-viewer.desktop"
install -Dm644 build/icon/care-viewer.png "$BUNDLE/share/icons/hicolor/256x256/apps/care-viewer.png"
install -Dm644 installer/README.md "$BUNDLE/README-INSTALL.md"
cat > "$BUNDLE/BUILD-INFO.txt" <<EOF
CARE Viewer $VERSION ($VARIANT variant)
built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sm)
commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (uncommitted changes)')
python: $("$PY" --version 2>&1 | cut -d' ' -f2), torch: $TORCH
check an install with: ./care-viewer --self-test
EOF
BUILD_S=$(( $(date +%s) - T0 ))
say "bundle $BUNDLE: $(du -sh "$BUNDLE" | cut -f1) (built in ${BUILD_S} s)"

# ---------------------------------------------------------------------------------------------
# 4. Self-test of the bundle (headless, offline) and the tarball
# ---------------------------------------------------------------------------------------------
if [[ "$SELFTEST" == 1 ]]; then
    say "bundle self-test"
    # A clean environment: no venv, no PYTHONPATH, no checkout models folder.
    env -i HOME="$HOME" PATH=/usr/bin:/bin LANG=C.UTF-8 CARE_MODELS_DIR="$REPO/build/empty-models" \
        CARE_DATA_DIR="$REPO/build/selftest-data" "$BUNDLE/care-viewer" --self-test --out "$REPO/build/selftest-report"
fi
if [[ "$TAR" == 1 ]]; then
    ARCH=$(uname -m)
    TARBALL="dist/care-viewer-$VERSION-linux-$ARCH-$VARIANT.tar.gz"
    say "packing $TARBALL"
    GZ=gzip; command -v pigz >/dev/null && GZ=pigz
    tar -C dist -cf - care-viewer | "$GZ" -6 > "$TARBALL"
    say "$TARBALL: $(du -h "$TARBALL" | cut -f1)"
fi
say "done in $(( $(date +%s) - T0 )) s"
