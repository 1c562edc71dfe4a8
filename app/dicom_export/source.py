"""What an export starts from: the run (a run folder or an audit-trail run id, resolved as
``care-viewer report`` does) and the one DICOM instance the run's slice came from.

The instance is re-read from ``record.input.source_path`` and accepted only when the display-
frame pixels the loader gives for it hash to the run's recorded ``pixel_sha256``: then the
masks (display frame) map onto that instance's own pixel grid through the very
:class:`~app.study.display_frame.DisplayFrame` that produced the models' image. Nothing is
invented: a run whose source is not DICOM, is gone, or has changed is refused (ExportError).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from app.pipeline.record import Override, RunRecord
from app.study.display_frame import DisplayFrame, display_frame
from app.study.volume import PatientInfo, SourceFormat, Volume

from .errors import ExportError


@dataclass
class RunSource:
    """A finished run with the clinician's overrides and the patient header the store kept."""

    record: RunRecord
    overrides: list[Override] = field(default_factory=list)
    patient: PatientInfo | None = None
    run_dir: Path | None = None  # None: loaded from the audit trail by id


@dataclass(frozen=True, eq=False)
class SourceInstance:
    """The source DICOM instance of a run's slice and the display frame it was shown in."""

    dataset: pydicom.Dataset  # the whole instance, pixel data included (highdicom copies modules from it)
    path: Path
    frame: DisplayFrame  # of the volume the instance was found in
    slice_index: int  # the instance's slice in ``frame.volume``

    def mask_on_instance(self, display_mask: np.ndarray) -> np.ndarray:
        """A display-frame mask -> the instance's (Rows, Columns) pixel grid (bool, a copy)."""
        grid = np.ascontiguousarray(self.frame.to_array(np.asarray(display_mask, dtype=bool)))
        rows, cols = int(self.dataset.Rows), int(self.dataset.Columns)
        if grid.shape != (rows, cols):
            raise ExportError(f"the mask maps to {grid.shape[1]}x{grid.shape[0]} pixels but the source "
                              f"instance has {cols}x{rows}")
        return grid


def load_run_source(run: str | Path) -> RunSource:
    """A run folder / run.json, or a run id (or unique prefix) from the audit trail.

    Raises:
        ExportError: unreadable folder, unknown id, damaged audit trail.
    """
    from app.audit.store import AuditStore, AuditStoreError
    from app.pipeline.run_io import read_run

    target = Path(run)
    try:
        if target.exists():
            try:
                record = read_run(target)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ExportError(f"{target}: not a readable run record ({exc})") from exc
            source = RunSource(record, run_dir=target if target.is_dir() else target.parent)
            try:  # the audit trail adds the overrides and the patient header if it knows the run
                with AuditStore() as store:
                    loaded = store.load_run(record.run_id, load_images=False)
                source.overrides, source.patient = list(loaded.overrides), loaded.patient
            except AuditStoreError:
                pass  # a headless run that never reached the audit trail
            return source
        with AuditStore() as store:
            loaded = store.load_run(str(run))
        return RunSource(loaded.record, list(loaded.overrides), loaded.patient)
    except AuditStoreError as exc:
        raise ExportError(str(exc)) from exc


def _digest(volume: Volume, k: int) -> str:
    return hashlib.sha256(np.ascontiguousarray(display_frame(volume).image(k)).tobytes()).hexdigest()


def _matching(volumes: list[Volume], record: RunRecord, whole_series: bool) -> tuple[Volume, int] | None:
    inp = record.input
    for v in volumes:
        if v.source_format != SourceFormat.DICOM or (inp.series_uid and v.series_uid != inp.series_uid):
            continue
        k = inp.slice_index if whole_series else 0
        if (whole_series and v.num_slices != inp.num_slices) or (not whole_series and v.num_slices != 1):
            continue
        if 0 <= k < v.num_slices and (not inp.pixel_sha256 or _digest(v, k) == inp.pixel_sha256):
            return v, k
    return None


def source_instance(record: RunRecord) -> SourceInstance:
    """The DICOM instance of the run's slice, verified against the recorded pixel sha256.

    Raises:
        ExportError: not a DICOM run, the source is gone or changed, or it is a multi-frame
            instance (whose frame this version does not resolve).
    """
    from app.study.loader import load

    inp, rid = record.input, record.run_id
    src = inp.source_path
    if not inp.study_uid or not inp.series_uid:
        name = Path(src).name if src else "no recorded file"
        raise ExportError(f"run {rid}: its source ({name}) is not DICOM, so there is no source study or instance "
                          f"for a DICOM object to belong to or reference")
    if not src:
        raise ExportError(f"run {rid}: the run records no source file to reference")
    path = Path(src)
    if not path.is_file():
        raise ExportError(f"run {rid}: the source {src} is no longer available (the objects must reference it)")
    # The slice's own file first (fast); a series whose display frame needs the whole stack second.
    found = _matching(load([str(path)]).volumes, record, whole_series=False)
    if found is None:
        found = _matching(load([str(path.parent)]).volumes, record, whole_series=True)
    if found is None:
        raise ExportError(f"run {rid}: the pixels of {src} no longer match the run's recorded sha256 "
                          f"(the file changed since the run)")
    volume, k = found
    files = volume.source_files
    if len(files) != volume.num_slices or volume.frames > 1:
        raise ExportError(f"run {rid}: the source {src} is a multi-frame instance; exporting onto one of its "
                          f"frames is not supported")
    instance_path = Path(files[k])
    try:
        ds = pydicom.dcmread(instance_path)
    except Exception as exc:  # pydicom raises many types for a damaged file
        raise ExportError(f"run {rid}: cannot re-read the source {instance_path} ({exc})") from exc
    if str(ds.get("StudyInstanceUID", "")) != inp.study_uid:
        raise ExportError(f"run {rid}: the source {instance_path} belongs to another study than the run")
    return SourceInstance(ds, instance_path, display_frame(volume), k)
