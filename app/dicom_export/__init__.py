"""DICOM export of a run: SEG, TID 1500 SR and Encapsulated PDF in the source study (no Qt).

Layer: imports app.study, app.pipeline and app.audit; the UI, the CLI and app.pacs (store)
call :func:`build_run_objects` / :func:`export_run`; the UI reads past runs back with
:func:`read_care_sr`.
"""
from .bundle import ExportBundle, build_run_objects, export_run
from .errors import ALL_KINDS, ExportError, ExportKind
from .sr_read import CareSrEntity, CareSrSummary, read_care_sr

__all__ = ["ALL_KINDS", "CareSrEntity", "CareSrSummary", "ExportBundle", "ExportError", "ExportKind",
           "build_run_objects", "export_run", "read_care_sr"]
