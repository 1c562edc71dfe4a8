"""The rows the audit store hands out (run summaries, loaded runs) and their small helpers."""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Iterator

from app.pipeline.record import Override, RunRecord
from app.study.volume import PatientInfo

STATUS_INTERRUPTED = "interrupted"  # started, never finished, its process is gone
STATUS_IN_PROGRESS = "running"  # started, not finished, its process is still alive


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    created: str
    finished: str
    status: str  # completed | cancelled | failed | interrupted | running
    study_uid: str
    series_uid: str
    slice_index: int
    question: str
    mode: str
    profile: str
    final_answer: str
    parent_run_id: str | None
    overrides: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class LoadedRun:
    """A stored run: the record (images re-attached), its overrides and the patient header."""

    record: RunRecord
    overrides: list[Override]
    patient: PatientInfo | None
    parent_run_id: str | None = None

    def __iter__(self) -> Iterator[Any]:  # `record, overrides = store.load_run(id)`
        return iter((self.record, self.overrides))


def patient_json(patient: PatientInfo | None) -> str:
    return json.dumps(dataclasses.asdict(patient) if patient is not None else {}, ensure_ascii=False)


def patient_from_json(text: str) -> PatientInfo | None:
    data = json.loads(text or "{}")
    if not data:
        return None
    known = {f.name for f in dataclasses.fields(PatientInfo)}
    return PatientInfo(**{k: str(v) for k, v in data.items() if k in known})


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        import psutil  # optional: the only portable check (os.kill(pid, 0) is Ctrl-C on Windows)

        return bool(psutil.pid_exists(pid))
    except ImportError:
        pass
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
