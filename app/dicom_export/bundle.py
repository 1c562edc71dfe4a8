"""``build_run_objects`` / ``export_run``: a run's DICOM objects, built in memory or written.

All objects go into the source study (its StudyInstanceUID, Patient and Study modules), each
in a new series. The SR references the SEG's segments only when the SEG is in the same
bundle (a reference to an object nobody wrote would dangle). ``deidentify`` applies the
PS3.15 Basic Profile to every object with one UID map for the whole bundle
(:mod:`.deidentify`), so the references between them stay consistent.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from pydicom.dataset import Dataset

from app.pipeline.vocab import RunStatus

from .deidentify import UidMap, deidentify_bundle
from .errors import ALL_KINDS, ExportError, ExportKind
from .selection import select_masks
from .source import RunSource, load_run_source, source_instance

SOP_CLASS_KIND = {
    "1.2.840.10008.5.1.4.1.1.66.4": ExportKind.SEG,
    "1.2.840.10008.5.1.4.1.1.88.34": ExportKind.SR,
    "1.2.840.10008.5.1.4.1.1.104.1": ExportKind.PDF,
}
_ORDER = (ExportKind.SEG, ExportKind.SR, ExportKind.PDF)


@dataclass
class ExportBundle:
    """The objects of one export, in SEG, SR, PDF order, and what the export had to say."""

    run_id: str
    datasets: list[Dataset] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deidentified: bool = False

    def kind_of(self, ds: Dataset) -> ExportKind:
        try:
            return SOP_CLASS_KIND[str(ds.SOPClassUID)]
        except (KeyError, AttributeError) as exc:
            raise ValueError(f"not an object of this export (SOP class {ds.get('SOPClassUID', '?')})") from exc

    def of_kind(self, kind: ExportKind) -> Dataset | None:
        return next((ds for ds in self.datasets if self.kind_of(ds) == kind), None)


def _kinds(kinds: Iterable[ExportKind | str]) -> frozenset[ExportKind]:
    out = frozenset(ExportKind(k) for k in kinds)
    return out or ALL_KINDS


def build_run_objects(run_dir: Path | str, kinds: Iterable[ExportKind | str] = ALL_KINDS,
                      deidentify: bool = False, uids: UidMap | None = None) -> ExportBundle:
    """The run's SEG / SR / Encapsulated PDF as pydicom datasets (``run_dir``: a run folder,
    its run.json, or a run id / unique prefix from the audit trail). ``uids``: the UID map to
    de-identify through when other objects of the same store share it (default: a new one).

    Raises:
        ExportError: the run cannot be exported as asked (one line naming the run and why).
    """
    run = load_run_source(run_dir)
    return build_from_source(run, _kinds(kinds), deidentify, uids)


def build_from_source(run: RunSource, kinds: frozenset[ExportKind], deidentify: bool,
                      uids: UidMap | None = None) -> ExportBundle:
    record = run.record
    rid = record.run_id
    if record.status != RunStatus.COMPLETED:
        raise ExportError(f"run {rid} is {record.status.value}: only a completed run is exported")
    src = source_instance(record)
    bundle = ExportBundle(rid, deidentified=deidentify)
    notes = bundle.warnings
    selection = select_masks(record, run.overrides)
    notes.extend(f"not exported: {line}" for line in selection.left_out)
    scrub = _scrubber(run, src) if deidentify else None
    seg = None
    if ExportKind.SEG in kinds:
        if selection.exported:
            from .seg import build_seg

            with _building(rid, "SEG", src):
                seg = build_seg(record, src, selection, notes, scrub)
        elif kinds == {ExportKind.SEG}:
            raise ExportError(f"run {rid}: no accepted mask left to write as a SEG"
                              + (f" ({'; '.join(selection.left_out)})" if selection.left_out else ""))
        else:
            notes.append("no SEG written: the run has no accepted mask left to export")
    study = record.study
    if ExportKind.SEG in kinds and study is not None and study.mask3d is not None:
        # The record keeps the 3-D mask's figures and per-slice rows, not its voxels: the SEG holds
        # the run's own (primary slice's) masks; the SR carries the 3-D figures.
        notes.append(f"the SEG holds the masks of slice {record.input.slice_index + 1} only: the study's 3-D mask "
                     f"(slices {study.mask3d.first + 1}\u2013{study.mask3d.last + 1}) is not kept voxel by voxel in "
                     "the run record, so it is not exported as a segment; its figures are in the SR")
    out: dict[ExportKind, Dataset] = {}
    if seg is not None:
        out[ExportKind.SEG] = seg
    if ExportKind.SR in kinds:
        from .sr import build_sr

        with _building(rid, "SR", src):
            out[ExportKind.SR] = build_sr(run, src, selection, seg, notes, scrub)
    if ExportKind.PDF in kinds:
        from .encapsulated_pdf import build_pdf, report_pdf

        with _building(rid, "Encapsulated PDF", src):
            out[ExportKind.PDF] = build_pdf(run, src, report_pdf(run, deidentify), deidentify)
        if deidentify:
            notes.append("the de-identified PDF keeps the run's own times (asked, finished, generated) as "
                         "`care-viewer report --deidentify` does; the patient's identifiers and study date are removed")
    bundle.datasets = [out[k] for k in _ORDER if k in out]
    if deidentify:
        deidentify_bundle(bundle.datasets, scrub, uids)
    return bundle


@contextmanager
def _building(rid: str, what: str, src) -> Iterator[None]:
    """What a builder rejects in the source (highdicom checks the source instance's modules,
    e.g. a missing pixel spacing or frame of reference) or a report that cannot be laid out,
    as one ExportError line; the cause stays chained for a developer."""
    from app.audit.report import ReportError, failure_reason

    try:
        yield
    except ExportError:
        raise
    except (ReportError, OSError) as exc:
        raise ExportError(f"run {rid}: the {what} cannot be made: {failure_reason(exc)}") from exc
    except (ValueError, AttributeError, TypeError, KeyError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"run {rid}: the {what} cannot be built on the source {src.path.name}: {reason}") from exc


def _scrubber(run: RunSource, src):
    """The report's scrubber (app/audit/report/deid.py) over the patient's identifiers."""
    from app.audit.report.deid import Scrubber

    from .deidentify import patient_of

    inp = run.record.input
    # The source's header as it is now, and the one the audit trail kept at run time (if any).
    kept = run.patient
    extra = [kept.name, kept.patient_id, kept.accession, kept.institution] if kept is not None else []
    extra += [inp.study_uid, inp.series_uid, inp.source_path]
    return Scrubber(patient_of(src.dataset), True, extra)


def file_name(bundle: ExportBundle, ds: Dataset) -> str:
    return f"{bundle.run_id[:8]}-{bundle.kind_of(ds).value}.dcm"


def export_run(run_dir: Path | str, out_dir: Path | str, kinds: Iterable[ExportKind | str] = ALL_KINDS,
               deidentify: bool = False, *, overwrite: bool = False) -> list[Path]:
    """Write the run's objects into ``out_dir`` as DICOM files (``<run id 8>-seg.dcm`` ...);
    returns the paths. Existing files are refused unless ``overwrite``.

    Raises:
        ExportError: as :func:`build_run_objects`, an existing file, or the folder is unwritable.
    """
    return write_bundle(build_run_objects(run_dir, kinds, deidentify), out_dir, overwrite=overwrite)


def write_bundle(bundle: ExportBundle, out_dir: Path | str, *, overwrite: bool = False) -> list[Path]:
    """The bundle's objects as DICOM files (each all-or-nothing), in ``bundle.datasets`` order."""
    from io import BytesIO

    from app.pipeline.run_io import write_bytes_atomic

    out = Path(out_dir)
    targets = [(out / file_name(bundle, ds), ds) for ds in bundle.datasets]
    if not overwrite and (taken := [p for p, _ in targets if p.exists()]):
        raise ExportError(f"run {bundle.run_id}: {taken[0]} exists (refused; pass --force to replace)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for path, ds in targets:
            buf = BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            written.append(write_bytes_atomic(path, buf.getvalue()))
    except OSError as exc:
        raise ExportError(f"run {bundle.run_id}: cannot write {out} ({exc.strerror or exc})") from exc
    return written
