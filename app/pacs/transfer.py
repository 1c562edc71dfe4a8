"""What both protocols share: the retrieve loop (one instance at a time: resumable, each
verified, cancellable) and the normalisation of query answers."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from pydicom.dataset import Dataset

from app.pacs.errors import PacsError
from app.pacs.local_files import already_present, file_problem, instance_path, verify_instance, write_atomic
from app.pacs.models import InstanceRef, RetrieveProgress, RetrieveResult, StudyMatch
from app.pacs.nodes import PacsNode

ProgressCallback = Callable[[RetrieveProgress], None]
CancelCheck = Callable[[], bool]


class InstanceUnavailable(Exception):
    """This one instance could not be had (gone from the node, refused, damaged); the retrieve
    goes on with the next. A node-level failure is a PacsError and stops the retrieve."""


def run_retrieve(node: PacsNode, refs: list[InstanceRef], study_uid: str, series_uid: str | None,
                 out_dir: Path, fetch: Callable[[InstanceRef], Dataset],
                 progress: ProgressCallback | None, cancel: CancelCheck | None) -> RetrieveResult:
    """Fetch each instance not already in ``out_dir``, verify it and write it atomically.

    ``fetch`` raises InstanceUnavailable for one instance (recorded, the loop goes on) or
    PacsError for the node (the loop stops; what was written is kept, the rest is failed).
    """
    result = RetrieveResult(out_dir=Path(out_dir), total=len(refs))
    reasons: list[str] = []
    for i, ref in enumerate(refs):
        if cancel is not None and cancel():
            result.cancelled = True
            break
        try:
            path = instance_path(out_dir, ref.study_uid, ref.series_uid, ref.sop_uid)
        except ValueError as exc:
            result.failed.append(ref.sop_uid)
            reasons.append(str(exc))
            continue
        if already_present(path, study_uid, ref.sop_uid):
            result.already_present += 1
        else:
            try:
                ds = fetch(ref)
                problem = verify_instance(ds, study_uid, ref.sop_uid, series_uid or ref.series_uid)
                if problem:
                    raise InstanceUnavailable(f"instance {ref.sop_uid} failed verification: {problem}")
                try:  # read back before the rename: only a verified file gets the real name
                    written = write_atomic(ds, path, lambda tmp, sop=ref.sop_uid: file_problem(tmp, study_uid, sop))
                except ValueError as exc:
                    raise InstanceUnavailable(f"instance {ref.sop_uid}: {exc}") from None
                result.written.append(written)
            except InstanceUnavailable as exc:
                result.failed.append(ref.sop_uid)
                reasons.append(str(exc))
            except (PacsError, OSError) as exc:  # the node, or our disk: stop, keep what was written
                result.failed.extend(r.sop_uid for r in refs[i:])
                reasons.append(exc.reason if isinstance(exc, PacsError)
                               else f"cannot write into {out_dir} ({exc.strerror or exc})")
                result.error = _summary(node, reasons, len(result.failed))
                return result
        if progress is not None:
            progress(RetrieveProgress(done=i + 1, total=len(refs), current_sop_uid=ref.sop_uid))
    result.complete = not result.failed and not result.cancelled
    if reasons:
        result.error = _summary(node, reasons, len(result.failed))
    return result


def _summary(node: PacsNode, reasons: list[str], n_failed: int) -> str:
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"PACS node {node.label}: {n_failed} instance(s) not retrieved: {reasons[0]}{more}"


def study_match(study_uid: str, patient_id: str, patient_name: str, study_date: str, accession: str,
                modalities: object, description: str, n_series: object, n_instances: object) -> StudyMatch:
    """A StudyMatch from the attribute values of either protocol, normalised the same way."""
    if isinstance(modalities, str):
        mods = tuple(m for m in modalities.split("\\") if m)
    else:
        mods = tuple(str(m) for m in (modalities or ()) if str(m))
    return StudyMatch(study_uid=study_uid, patient_id=patient_id, patient_name=patient_name,
                      study_date=study_date, accession=accession, modalities=tuple(sorted(mods)),
                      description=description, n_series=_int_or_none(n_series),
                      n_instances=_int_or_none(n_instances))


def _int_or_none(v: object) -> int | None:
    try:
        return int(str(v)) if v not in (None, "") else None
    except ValueError:
        return None


def sort_refs(refs: list[InstanceRef]) -> list[InstanceRef]:
    """Series, then instance number, then UID: the same order over both protocols."""
    return sorted(refs, key=lambda r: (r.series_uid, r.number if r.number is not None else 1 << 31, r.sop_uid))
