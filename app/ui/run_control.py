"""Asking, the controller's side: start a run on the displayed slice (after the audit trail
is open and any remote server is allowed), follow its progress, show its outcome, re-ask
with edited evidence, cancel."""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.pipeline.vocab import Scope
from app.study.volume import Volume

from .audit_worker import AuditFailure
from .clinician_edits import record_window
from .run_consent import consent_prompt, ensure_consent
from .run_worker import Progress, RunHandle, RunOutcome, RunRequest

if TYPE_CHECKING:
    from .ask_audit import AskAuditController


class RunControlMixin:
    """Runs (part of :class:`~app.ui.ask_audit.AskAuditController`)."""

    handle: RunHandle | None
    # The store is being opened for a run the user asked for: a second click must not
    # start another one meanwhile.
    _opening_for_run: bool = False

    def consent_prompt(self: "AskAuditController", url: str, statement: str) -> bool:
        return consent_prompt(self.window, url, statement)

    def _ensure_consent(self: "AskAuditController", profile_name: str) -> str:
        return ensure_consent(profile_name, self.consent_prompt)

    def start_run(self: "AskAuditController", question: str, profile: str, mode: str = "flow", *, boxes=None,
                  discarded=None, parent_run_id: str | None = None, slice_index: int | None = None,
                  window=None, scope: str | None = None) -> RunHandle | None:
        """Ask ``question`` about the displayed slice. Returns the handle when the run started
        at once; None when it was refused or waits for the audit trail to open (then
        ``run_started`` announces it). ``run_finished`` always follows a started run."""
        if self.handle is not None or self._opening_for_run:
            return None
        target = self.run_target()
        if target is None:
            self.ask.show_message("Open a study and wait until it has loaded, then ask.", "warning")
            return None
        volume, k = target
        if slice_index is not None:
            k = slice_index
        if not question.strip():
            self.ask.show_message("Type a question first.", "warning")
            return None
        if boxes is None:
            boxes = self.unused_boxes(volume, k)
        # What the radiologist sees now is what the models get, however long the open takes.
        req = RunRequest(volume, k, question, profile, mode, window or (None if volume.is_rgb else self.view.window),
                         list(boxes), set(discarded or ()), parent_run_id,
                         scope=Scope(scope or self.ask.selected_scope()))
        if self.audit_io.service.is_open:
            return self._launch_run(req)

        def opened(_store: object) -> None:
            self._opening_for_run = False
            self._launch_run(req)

        def refused(f: AuditFailure) -> None:
            self._opening_for_run = False
            self.window.status.showMessage(f"Audit trail unavailable: {f.message}", 15000)
            # The reason goes in the panel too: the one-line status bar cuts long paths.
            self.ask.show_message(f"The audit trail cannot be opened, so no run was started: {f.message}",
                                  "error", title="Audit trail unavailable")

        # Delivered later, on this thread: the flag is set before `opened` can clear it.
        queued = self.audit_io.submit(lambda s: s.store(), opened, refused, name="audit trail")
        self._opening_for_run = queued is not None
        return None

    def _launch_run(self: "AskAuditController", req: RunRequest) -> RunHandle | None:
        refusal = self._ensure_consent(req.profile)
        if refusal:
            self.ask.show_message(refusal, "warning", title="Not sent")
            return None
        volume = req.volume
        self.draw_tool.set_active(False)
        self.current_patient = volume.patient
        # The run worker begins and finishes the record on its own thread with the same store.
        handle = RunHandle(req, self.pipelines, self.audit_io.service.store, patient=volume.patient)
        self.handle = handle
        s = handle.signals
        s.partial.connect(lambda p, h=handle: self._on_progress(h, p))
        s.finished.connect(lambda outcome, h=handle: self._on_finished(h, outcome))
        s.errored.connect(lambda msg, h=handle: self._on_finished(h, RunOutcome(None, msg, "internal")))
        self.ask.run_started(req.question)
        self._update_actions()
        self.run_started.emit(handle)  # before start(): listeners may connect to its signals
        handle.start()
        return handle

    def cancel_run(self: "AskAuditController") -> None:
        if self.handle is not None:
            self.handle.cancel()

    def _on_progress(self: "AskAuditController", handle: RunHandle, p: Progress) -> None:
        if handle is self.handle:
            self.ask.on_progress(p)

    def _on_finished(self: "AskAuditController", handle: RunHandle, outcome: RunOutcome) -> None:
        if handle is not self.handle:
            return
        self.handle = None
        self.ask.run_finished(outcome)
        rec = outcome.record
        if rec is not None and not _own_study_open(rec, handle.request.volume, self.window.current_volume):
            self._finished_elsewhere(handle, outcome)
            return
        if rec is not None:
            volume: Volume = handle.request.volume
            self.current_run_id = rec.run_id
            self.current_persisted = outcome.persisted
            # Boxes used by this run are now part of its record, not pending any more.
            key = (volume.series_uid, handle.request.slice_index)
            if key in self.pending and handle.request.parent_run_id is None:
                self.pending.pop(key, None)
                self._redraw_pending()
            shown = self.window.current_volume is volume
            self.audit.show_record(rec, [], on_view=shown)
            self.audit_dock.raise_()
            parent = outcome.parent_run_id
            if parent and outcome.persisted:
                boxes, discarded = handle.request.boxes, sorted(handle.request.discarded)
                self._append_override(parent, "reask", {
                    "target": "run", "old": parent, "new": rec.run_id,
                    "note": f"re-asked with {len(boxes)} box(es), discarded: {', '.join(discarded) or 'none'}"})
        self._update_actions()
        self._update_target()
        self.refresh_history()
        self.run_finished.emit(outcome)

    def _finished_elsewhere(self: "AskAuditController", handle: RunHandle, outcome: RunOutcome) -> None:
        """The run's study was replaced while it ran: its masks and answer must not land on the
        study now open. It is in the audit trail (the history lists it with its own study)."""
        volume = handle.request.volume
        line = f"The run on {volume.display_name} finished; open that study to see it."
        self.ask.stages.reset()
        self.ask.status.setText(line)
        self.ask.show_message(line, "info")
        self.window.status.showMessage(line, 15000)
        self._update_actions()
        self._update_target()
        self.refresh_history()
        self.run_finished.emit(outcome)

    def reask(self: "AskAuditController") -> RunHandle | None:
        rec = self.audit.record
        if rec is None or self.handle is not None:
            return None
        v = self.window.current_volume
        if v is None or (rec.input.series_uid and v.series_uid != rec.input.series_uid):
            self.ask.show_message("Open the run's series to re-ask it.", "warning")
            return None
        boxes, discarded = self.audit.edited_evidence()
        return self.start_run(rec.question, rec.profile, rec.mode, boxes=boxes, discarded=discarded,
                              parent_run_id=rec.run_id if self.current_persisted else None,
                              slice_index=rec.input.slice_index, window=record_window(rec.input.window))


def _own_study_open(rec, volume: Volume, current: Volume | None) -> bool:
    """Whether the viewer still shows the study the run was asked on (by its study UID; the very
    volume object when the files carry none, e.g. a PNG)."""
    if current is None:
        return False
    if current is volume:
        return True
    study = rec.input.study_uid or volume.study_uid
    return bool(study) and current.study_uid == study
