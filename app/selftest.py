"""``care-viewer --self-test``: the install check a hospital IT department runs.

Headless and offline. It proves the parts a deployment can break:

1. the bundled sample CT study loads (pydicom + the RLE decoder),
2. the CARE pipeline runs end to end on the ``tiny`` profile — random-initialised tiny
   InternVL / SAM3 checkpoints (real architectures, meaningless answers) plus the real
   LiteMedSAM and MiniLM weights that ship with the app — so torch, transformers and every
   model code path load and run,
3. the evidence report PDF is written (reportlab and its fonts),
4. Qt starts headless (``offscreen``) and can draw the app's SVG icon and PNG/JPEG images
   (the platform, image-format and icon-engine plugins are in place).

Exit status 0 when every check passes; otherwise the first failed check's code (2 sample
unreadable, 3 weights missing, 4 any other failed check) and a one-line reason per failure.

Inside a PyInstaller bundle the tiny checkpoints are the ones the build wrote into the bundle
(``<bundle>/models/tiny-*``). From a source checkout they are taken from the models folder
(``models_dir()``) and, when absent, written there once by ``app/devtools/tiny_models.py``.
Nothing is written to the audit trail; the PDF goes to a fresh temporary folder (or ``--out``).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

EXIT_OK = 0
EXIT_UNREADABLE = 2
EXIT_WEIGHTS_MISSING = 3
EXIT_CHECK_FAILED = 4

PROFILE = "tiny"
QUESTION = "Is there a mass in the right lung?"
# The tiny model's text is noise; a short budget keeps the check to seconds on a CPU.
MAX_NEW_TOKENS = 16
REPORT_NAME = "care-viewer-self-test.pdf"


class SelfTestFailure(Exception):
    """A check failed; ``code`` is the process exit status it maps to."""

    def __init__(self, message: str, code: int = EXIT_CHECK_FAILED) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str
    code: int = EXIT_OK


@dataclass
class SelfTestResult:
    checks: list[Check] = field(default_factory=list)
    report_path: Path | None = None
    record: Any = None  # the RunRecord of the tiny run, when it got that far

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        return next((c.code for c in self.checks if not c.ok), EXIT_OK)


def bundle_dir() -> Path | None:
    """The PyInstaller bundle's data folder (``sys._MEIPASS``), None when run from source."""
    meipass = getattr(sys, "_MEIPASS", None)
    return Path(meipass) if meipass else None


def tiny_models_dir() -> Path:
    """Where the tiny checkpoints are expected: inside the bundle, else the models folder."""
    bundle = bundle_dir()
    if bundle is not None:
        return bundle / "models"
    from app.pipeline.profiles import models_dir

    return models_dir()


def _ensure_tiny_from_source(folder: Path, say: Callable[[str], None]) -> None:
    """From a checkout, write missing tiny checkpoints with app/devtools/tiny_models.py (offline, ~10 s)."""
    if bundle_dir() is not None:
        return
    if not (Path(__file__).resolve().parents[1] / "pyproject.toml").is_file():
        return  # an installed wheel, not a checkout: the weights check below explains what is missing
    from app.devtools.tiny_models import ensure_tiny_models, tiny_internvl_up_to_date

    if not tiny_internvl_up_to_date(folder) or not (folder / "tiny-sam3").is_dir():
        say(f"writing the tiny test checkpoints to {folder} (once) ...")
        ensure_tiny_models(folder)


def tiny_profile(folder: Path):
    """The manifest's ``tiny`` profile with its local folders pinned to ``folder``.

    An absolute ``local_dir`` makes ``ModelSpec.path()`` ignore ``models_dir()``, so the
    bundled checkpoints are used without touching ``CARE_MODELS_DIR`` (which keeps naming
    the user's real models folder).
    """
    from app.pipeline.profiles import load_profile

    profile = load_profile(PROFILE)
    models = {
        role: (replace(spec, local_dir=str(folder / spec.folder_name)) if spec.local_only else spec)
        for role, spec in profile.models.items()
    }
    return replace(profile, models=models)


# ------------------------------------------------------------------------------------------
# Checks. Each returns a one-line detail or raises SelfTestFailure.
# ------------------------------------------------------------------------------------------
def check_environment() -> str:
    import numpy
    import torch
    import transformers

    where = f"bundle {bundle_dir()}" if bundle_dir() else f"source {Path(__file__).resolve().parents[1]}"
    cuda = torch.version.cuda or "none"
    gpu = "yes" if torch.cuda.is_available() else "no"
    from app.pipeline.profiles import models_dir

    return (
        f"{where}; Python {sys.version.split()[0]}, numpy {numpy.__version__}, torch {torch.__version__} "
        f"(CUDA build: {cuda}, GPU available: {gpu}), transformers {transformers.__version__}; "
        f"models folder (CARE_MODELS_DIR) {models_dir()}"
    )


def check_sample(state: dict[str, Any]) -> str:
    from app.study.loader import load
    from app.study.sample import sample_study_path

    path = sample_study_path()
    if not path.is_dir():
        raise SelfTestFailure(f"{path}: the bundled sample study is missing", EXIT_UNREADABLE)
    result = load(path)
    if not result.volumes:
        reasons = "; ".join(str(e) for e in result.errors) or "no image series found"
        raise SelfTestFailure(f"{path}: sample study unreadable ({reasons})", EXIT_UNREADABLE)
    vol = result.volumes[0]
    state["volume"] = vol
    z, y, x = vol.array.shape
    return f"{path.name}: {vol.modality} {x}x{y}x{z}, {len(vol.source_files)} files"


def check_pipeline(state: dict[str, Any], folder: Path, max_new_tokens: int) -> str:
    from app.pipeline.engine import CarePipeline
    from app.pipeline.strategies import strategy_for
    from app.pipeline.types import WeightsMissingError
    from app.pipeline.vocab import BackendKind, Mode, RunStatus

    vol = state["volume"]
    try:
        profile = tiny_profile(folder)
    except (OSError, KeyError, ValueError) as exc:
        raise SelfTestFailure(f"model profiles unreadable: {exc}") from exc
    k = vol.num_slices // 2
    from app.study.display_frame import display_frame

    h, w = display_frame(vol).shape  # boxes are in the display frame
    # A clinician box over the central quarter of the slice exercises the box route (real
    # LiteMedSAM weights) alongside the entity proposals' text route (tiny SAM3).
    box = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
    pipeline = CarePipeline(profile, max_new_tokens=max_new_tokens, entity_max_new_tokens=max_new_tokens, device="cpu")
    try:
        record = pipeline.run(vol, k, QUESTION, strategy=strategy_for(Mode.FLOW, pipeline), boxes=[box])
    except WeightsMissingError as exc:
        raise SelfTestFailure(f"tiny checkpoints missing: {exc}", EXIT_WEIGHTS_MISSING) from exc
    state["record"] = record
    if record.status != RunStatus.COMPLETED:
        raise SelfTestFailure(f"pipeline run {record.status}: {'; '.join(record.errors) or 'no reason recorded'}")
    if record.errors:
        # A route that failed (e.g. a model library that did not load) leaves the run
        # "completed" for the user's sake; for an install check it is a failure.
        raise SelfTestFailure(f"pipeline completed with errors: {'; '.join(record.errors)}")
    if not any(m.backend == BackendKind.LITEMEDSAM for m in record.masks):
        raise SelfTestFailure("pipeline ran but LiteMedSAM produced no mask for the clinician box")
    if len(record.answers) != len(pipeline.evidence_types) or record.vote is None:
        raise SelfTestFailure(
            f"pipeline ran but produced {len(record.answers)} answers for {len(pipeline.evidence_types)} evidence passes"
        )
    seg = sorted({m.backend for m in record.masks})
    return (
        f"slice {k + 1}/{vol.num_slices}: {len(record.entities.final)} entities, {len(record.masks)} masks "
        f"({', '.join(seg)}), {len(record.answers)} evidence passes, vote recorded"
    )


def check_report(state: dict[str, Any], out_dir: Path) -> str:
    from app.audit.report import ReportError, build_report, failure_reason

    record, vol = state["record"], state["volume"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / REPORT_NAME
    try:
        path = Path(build_report(record, target, patient=vol.patient))
    except (OSError, ReportError) as exc:
        raise SelfTestFailure(f"{target}: cannot write the report ({failure_reason(exc)})") from exc
    head = path.read_bytes()[:5] if path.is_file() else b""
    if head != b"%PDF-":
        raise SelfTestFailure(f"{path}: the report was not written as a PDF")
    state["report"] = path
    return f"{path} ({path.stat().st_size // 1024} KiB)"


def check_dicom_export(state: dict[str, Any], out_dir: Path) -> str:
    """The run as DICOM SEG + SR (highdicom needs its bundled standard tables for both) written and
    read back, and the PACS libraries importable (pynetdicom reads its own version metadata on
    import): what a bundle missing their data files would fail on."""
    import pydicom

    from app.dicom_export import ExportError, ExportKind
    from app.dicom_export.bundle import build_from_source, write_bundle
    from app.dicom_export.source import RunSource

    import dicomweb_client  # noqa: F401 - DICOMweb client of app.pacs
    import pynetdicom

    from app.pipeline.record import Override
    from app.pipeline.vocab import BackendKind, OverrideKind

    record, vol = state["record"], state["volume"]
    overrides = []
    if not any(m.accepted for m in record.masks):
        # Random tiny weights rarely pass tau; the SEG path must still run, so the self-test
        # accepts the clinician-box mask under its own name (the objects say who accepted it).
        i = next(i for i, m in enumerate(record.masks) if m.backend == BackendKind.LITEMEDSAM)
        overrides.append(Override(time=record.finished or record.created, author="care-viewer --self-test",
                                  target=f"masks[{i}]", old="rejected", new="accepted",
                                  note="install check: SEG written regardless of tau", kind=OverrideKind.MASK_ACCEPT))
    try:
        bundle = build_from_source(RunSource(record, overrides, patient=vol.patient),
                                   frozenset({ExportKind.SEG, ExportKind.SR}), deidentify=False)
        paths = write_bundle(bundle, out_dir / "dicom", overwrite=True)
    except ExportError as exc:
        raise SelfTestFailure(f"DICOM export failed: {exc}") from exc
    kinds = []
    for path in paths:
        ds = pydicom.dcmread(path)
        kinds.append(f"{bundle.kind_of(ds).value} ({ds.Modality})")
    how = " (SEG of the clinician-box mask, accepted by the self-test: no mask passed tau)" if overrides else ""
    return f"{', '.join(kinds)} in {out_dir / 'dicom'}{how}; pynetdicom {pynetdicom.__version__}"


def check_qt() -> str:
    # Offscreen unless the caller chose a platform: IT may run this over SSH without a display.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray, QSize
    from PySide6.QtGui import QIcon, QImage, QImageReader
    from PySide6.QtWidgets import QApplication

    # A QApplication (not a bare QGuiApplication): it is process-wide, and the viewer's
    # widgets abort the process if a later caller finds only a QGuiApplication.
    app = QApplication.instance() or QApplication(sys.argv[:1])
    formats = {bytes(f.data()).decode().lower() for f in QImageReader.supportedImageFormats()}
    missing = [f for f in ("png", "jpeg", "svg") if f not in formats]
    if missing:
        raise SelfTestFailure(f"Qt image-format plugins missing: {', '.join(missing)}")
    from app.study.sample import resources_dir

    svg = resources_dir() / "icons" / "care-viewer.svg"
    pix = QIcon(str(svg)).pixmap(QSize(64, 64))
    if pix.isNull():
        raise SelfTestFailure(f"{svg}: Qt cannot render the app icon (SVG icon engine missing)")
    img = QImage()
    if not img.loadFromData(QByteArray(_tiny_png()), "PNG") or img.isNull():
        raise SelfTestFailure("Qt cannot decode a PNG image")
    return f"platform {app.platformName()}, Qt image formats incl. {', '.join(sorted(set(formats) & {'png', 'jpeg', 'svg'}))}"


def _tiny_png() -> bytes:
    """A 2x2 PNG made with OpenCV (the app's own image writer), to check Qt's PNG reader."""
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.full((2, 2, 3), 128, np.uint8))
    return buf.tobytes() if ok else b""


def run_self_test(
    out_dir: Path | None = None,
    *,
    models_folder: Path | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
    qt: bool = True,
    say: Callable[[str], None] = print,
) -> SelfTestResult:
    """Run every check (later checks are skipped once one they depend on failed)."""
    result = SelfTestResult()
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="care-viewer-self-test-"))
    folder = Path(models_folder) if models_folder else tiny_models_dir()
    state: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], str]) -> bool:
        t0 = time.perf_counter()
        try:
            detail, ok, code = fn(), True, EXIT_OK
        except SelfTestFailure as exc:
            detail, ok, code = str(exc), False, exc.code
        except Exception as exc:  # an install defect (missing module/library): name it, no traceback
            detail, ok, code = f"{type(exc).__name__}: {exc}", False, EXIT_CHECK_FAILED
            if os.environ.get("CARE_SELFTEST_TRACEBACK"):
                traceback.print_exc()
        check = Check(name, ok, time.perf_counter() - t0, detail, code)
        result.checks.append(check)
        say(f"[{'ok' if ok else 'FAIL'}] {name} ({check.seconds:.1f} s): {detail}")
        return ok

    step("environment", check_environment)
    if step("sample study", lambda: check_sample(state)):
        if models_folder is None:  # a folder given explicitly is checked as it is
            _ensure_tiny_from_source(folder, say)
        if step("CARE pipeline (tiny profile)", lambda: check_pipeline(state, folder, max_new_tokens)):
            step("evidence report PDF", lambda: check_report(state, out_dir))
            step("DICOM SEG + SR", lambda: check_dicom_export(state, out_dir))
    if qt:
        step("Qt (headless)", check_qt)
    result.record = state.get("record")
    result.report_path = state.get("report")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="care-viewer --self-test",
        description="Headless install check: sample study, tiny CARE pipeline, PDF report, Qt plugins.",
    )
    parser.add_argument("--out", type=Path, help="folder for the report PDF (default: a new temporary folder)")
    parser.add_argument("--models", type=Path, help="folder holding tiny-internvl/tiny-sam3 (default: bundled)")
    parser.add_argument("--no-qt", action="store_true", help="skip the Qt check")
    args = parser.parse_args(argv)
    # Never reach for the hub: the self-test must pass offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    t0 = time.perf_counter()
    result = run_self_test(args.out, models_folder=args.models, qt=not args.no_qt)
    took = time.perf_counter() - t0
    if result.ok:
        print(f"SELF-TEST PASSED in {took:.1f} s; report: {result.report_path}")
    else:
        failed = [c for c in result.checks if not c.ok]
        print(f"SELF-TEST FAILED in {took:.1f} s: " + " | ".join(f"{c.name}: {c.detail}" for c in failed),
              file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
