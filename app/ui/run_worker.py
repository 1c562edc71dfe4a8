"""The CARE pipeline and the box segmenter, driven from the GUI on worker threads.

Nothing here touches a widget: tasks run on :class:`~app.ui.workers.Worker` threads and
hand back plain results (:class:`RunOutcome`, :class:`BoxOutcome`). The GUI thread only
receives signals, so the event loop never waits for a model.

- :class:`PipelineCache` keeps one :class:`CarePipeline` per profile alive, so the second
  question on a profile costs forward passes only (models stay loaded), and serialises
  everything that uses one pipeline (a run and a box segmentation share its segmenter).
- :class:`RunHandle` is one question in flight. It has its *own* cancel flag: the generic
  Worker drops a cancelled task's return value, but a cancelled CARE run still returns a
  record that must be shown and persisted.
- The run is committed to the audit store when the engine has created its record (before
  any model runs: the run observer's ``on_started``) and finished there whatever the outcome
  (completed, cancelled, failed).
- This is a composition root: it picks the run strategy for the request's mode
  (:func:`app.pipeline.strategies.strategy_for`), kept per profile so a coordinator is built once.
"""
from __future__ import annotations

import getpass
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from app.audit.run_observer import AuditRunObserver
from app.pipeline.record import MaskRecord, RunRecord
from app.pipeline.segmentation.service import image_key
from app.pipeline.strategies import RunStrategy, strategy_for
from app.pipeline.types import Box, PipelineError, Stage, WeightsMissingError
from app.pipeline.vocab import Mode, Scope
from app.study.volume import PatientInfo, Volume, Window

from .workers import Worker

log = logging.getLogger(__name__)

STAGES: tuple[Stage, ...] = (Stage.ENTITIES, Stage.MASKS, Stage.EVIDENCE, Stage.ANSWER, Stage.REVIEW)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): overrides still record the change
        return ""


# ----------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------
def _default_factory(profile: Any) -> Any:
    from app.pipeline.engine import CarePipeline

    return CarePipeline(profile)


class PipelineCache:
    """One warm :class:`CarePipeline` per profile name, plus a lock serialising its use."""

    def __init__(self, factory: Callable[[Any], Any] | None = None) -> None:
        self.factory = factory or _default_factory
        self._pipes: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._strategies: dict[tuple[str, str], RunStrategy] = {}
        self._guard = threading.Lock()

    def get(self, profile_name: str) -> Any:
        """The pipeline for ``profile_name`` (created on first use; models load lazily)."""
        with self._guard:
            pipe = self._pipes.get(profile_name)
            if pipe is None:
                from app.pipeline.profiles import load_profile

                pipe = self.factory(load_profile(profile_name))
                self._pipes[profile_name] = pipe
                self._locks[profile_name] = threading.Lock()
            return pipe

    def lock(self, profile_name: str) -> threading.Lock:
        self.get(profile_name)
        return self._locks[profile_name]

    def put(self, profile_name: str, pipeline: Any) -> None:
        """Use ``pipeline`` for ``profile_name`` (tests share one warm pipeline)."""
        with self._guard:
            self._pipes[profile_name] = pipeline
            self._locks.setdefault(profile_name, threading.Lock())

    def strategy(self, profile_name: str, mode: str) -> RunStrategy:
        """The run strategy for ``mode`` on ``profile_name``'s pipeline (kept, so CARE-Coord builds
        its coordinator once per pipeline, on the first coord run)."""
        pipe = self.get(profile_name)
        with self._guard:
            key = (profile_name, str(mode))
            strategy = self._strategies.get(key)
            if strategy is None or getattr(strategy, "stages", None) is not pipe:
                strategy = self._strategies[key] = strategy_for(mode, pipe)
            return strategy

    def loaded(self) -> list[str]:
        return list(self._pipes)


# ----------------------------------------------------------------------------------------
# One question
# ----------------------------------------------------------------------------------------
@dataclass
class RunRequest:
    volume: Volume
    slice_index: int
    question: str
    profile: str
    mode: Mode = Mode.FLOW  # the caller's choice; strategy_for picks the strategy for it
    window: Window | None = None
    boxes: list[Box] = field(default_factory=list)
    discarded: set[str] = field(default_factory=set)
    parent_run_id: str | None = None
    scope: Scope = Scope.SLICE  # study: app.pipeline.study_scope wraps the mode's strategy


@dataclass
class Progress:
    stage: Stage
    message: str
    fraction: float


@dataclass
class RunOutcome:
    """What a run produced. ``record`` is None only when nothing ran (``error`` says why)."""

    record: RunRecord | None
    error: str = ""  # a message for the radiologist (weights missing, audit trail unwritable, ...)
    error_kind: str = ""  # "weights" | "audit" | "input" | "internal" | ""
    persisted: bool = False
    audit_warning: str = ""  # the run happened but the audit store could not record it
    parent_run_id: str | None = None


def _audit_observer(store: Any, patient: PatientInfo | None, parent: str | None,
                    report: Callable[[Progress], None]) -> AuditRunObserver:
    """The shared Qt-free audit observer (start row before any model runs), reporting
    :class:`Progress` items to the GUI."""
    return AuditRunObserver(store, patient, parent,
                            lambda stage, message, fraction: report(Progress(stage, message, fraction)))


def friendly_errors(record: RunRecord) -> list[str]:
    """The record's errors as a radiologist should read them."""
    out = []
    for e in record.errors:
        low = e.lower()
        if "memoryerror" in low or "outofmemory" in low or "out of memory" in low:
            dev = next((m.device for m in record.models.values()), "this computer")
            out.append(
                f"Out of memory on {dev} while running profile '{record.profile}'. Close other programs, or "
                f"choose a smaller profile. ({e})"
            )
        else:
            out.append(e)
    return out


def run_task(
    request: RunRequest,
    pipelines: PipelineCache,
    store_factory: Callable[[], Any] | None,
    cancel: threading.Event,
    report: Callable[[Progress], None],
    patient: PatientInfo | None = None,
) -> RunOutcome:
    """The worker-thread body of one question (never raises)."""
    parent = request.parent_run_id
    try:
        pipe = pipelines.get(request.profile)
    except (KeyError, OSError, ValueError) as exc:
        return RunOutcome(None, f"Profile '{request.profile}' cannot be used: {exc}", "input", parent_run_id=parent)
    try:
        pipe.check_weights()
    except WeightsMissingError as exc:
        return RunOutcome(None, str(exc), "weights", parent_run_id=parent)

    store = None
    audit_warning = ""
    if store_factory is not None:
        try:
            store = store_factory()
        except Exception as exc:  # noqa: BLE001 - AuditStoreError or OSError: refuse, the run must be auditable
            return RunOutcome(None, f"The audit trail cannot be opened, so no run was started: {exc}", "audit",
                              parent_run_id=parent)

    observer = _audit_observer(store, patient, parent, report)
    try:
        with pipelines.lock(request.profile):
            record = pipe.run(
                request.volume, request.slice_index, request.question, window=request.window,
                strategy=_strategy(pipelines, request, pipe), observer=observer,
                cancel=cancel.is_set, boxes=list(request.boxes), discarded=set(request.discarded),
            )
    except WeightsMissingError as exc:
        # Weights vanished between the check and the load: the run closed its started record as
        # failed (the message in its errors), and it is finished in the store below.
        record = observer.record
        if record is None:
            return RunOutcome(None, str(exc), "weights", parent_run_id=parent)
    except PipelineError as exc:  # prepare() rejected the input (empty question, bad slice)
        return RunOutcome(None, str(exc), "input", parent_run_id=parent)
    except Exception as exc:  # noqa: BLE001 - the audit store failed at begin_run, or a bug
        log.exception("run failed before the pipeline started")
        if observer.record is None or store is None:
            return RunOutcome(None, f"The run could not start: {exc}", "internal", parent_run_id=parent)
        return RunOutcome(None, f"The audit trail could not record the run start, so it was stopped: {exc}",
                          "audit", parent_run_id=parent)

    persisted = False
    if store is not None:
        try:
            store.finish_run(record, patient=patient, parent_run_id=parent)
            persisted = True
        except Exception as exc:  # noqa: BLE001 - show the answer anyway, say it is not recorded
            log.exception("finish_run failed")
            audit_warning = f"This run could not be saved to the audit trail: {exc}"
    return RunOutcome(record, persisted=persisted, audit_warning=audit_warning, parent_run_id=parent)


def _strategy(pipelines: PipelineCache, request: RunRequest, pipe: Any) -> RunStrategy:
    strategy = pipelines.strategy(request.profile, request.mode)
    if request.scope == Scope.STUDY:
        from app.pipeline.study_scope import study_strategy

        return study_strategy(pipe, strategy)
    return strategy


class RunHandle:
    """One question running on a worker thread. Signals arrive on the GUI thread:
    ``worker.signals.partial`` carries :class:`Progress`, ``finished`` a :class:`RunOutcome`."""

    def __init__(self, request: RunRequest, pipelines: PipelineCache, store_factory: Callable[[], Any] | None,
                 patient: PatientInfo | None = None) -> None:
        self.request = request
        self.cancel_event = threading.Event()
        self.started = time.perf_counter()
        self.worker = Worker(
            lambda ctx: run_task(request, pipelines, store_factory, self.cancel_event, ctx.partial, patient),
            name="CARE run",
        )

    @property
    def signals(self):
        return self.worker.signals

    def start(self) -> "RunHandle":
        self.worker.start()
        return self

    def cancel(self) -> None:
        """Stop the run: a remote request in flight within ~0.1 s (the flag reaches the remote
        client through execute_run's cancel scope), a local model at the next stage boundary."""
        self.cancel_event.set()

    @property
    def cancelling(self) -> bool:
        return self.cancel_event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)


# ----------------------------------------------------------------------------------------
# A clinician box -> a mask (LiteMedSAM)
# ----------------------------------------------------------------------------------------
@dataclass
class BoxOutcome:
    mask: MaskRecord | None
    slice_index: int
    box: Box
    error: str = ""


def segment_box_task(pipelines: PipelineCache, profile: str, volume: Volume, slice_index: int, window: Window,
                     box: Box, name: str) -> BoxOutcome:
    """Worker-thread body: the profile's box-prompted segmenter on one box, through the same
    segmentation service and embedding key as the engine's segment stage (so a later run on this
    slice reuses the embedding, and the mask is scored against the pipeline's tau alike)."""
    from app.study.display import slice_rgb
    from app.study.display_frame import display_frame

    try:
        pipe = pipelines.get(profile)
        with pipelines.lock(profile):
            service = pipe.segmentation()
            if service.box_route() is None:
                return BoxOutcome(None, slice_index, box, f"profile '{profile}' has no box-prompted segmenter")
            pixels = display_frame(volume).image(slice_index)  # the engine's pixels: one embedding key
            image = slice_rgb(volume, slice_index, window)
            mask = service.segment_box(image, image_key(pixels, window), box, name)
            return BoxOutcome(mask, slice_index, box)
    except Exception as exc:  # noqa: BLE001 - a failed segmentation is a message, not a crash
        log.exception("box segmentation failed")
        return BoxOutcome(None, slice_index, box, f"box segmentation failed: {exc}")
