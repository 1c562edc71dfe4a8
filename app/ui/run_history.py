"""The History dock's side of the controller: list the study's runs and reopen one, both
through the audit queue (the list is a query, a reopen decodes every PNG of the run)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from app.study.reformat import native_plane

from .audit_worker import AuditFailure

if TYPE_CHECKING:
    from app.audit.store import LoadedRun, RunSummary

    from .ask_audit import AskAuditController


class RunHistoryMixin:
    """History listing and reopening (part of :class:`~app.ui.ask_audit.AskAuditController`)."""

    def refresh_history(self: "AskAuditController") -> None:
        """List the displayed study's runs; ``history_changed`` fires once the list is shown."""
        v = self.window.current_volume
        if v is None:
            self.history.set_runs([], "No study open")
            self.history_changed.emit()
            return
        service = self.audit_io.service
        if not service.is_open and not service.database_exists():
            self.history.set_runs([], "No runs yet for this study")  # opening would create the file
            self.history_changed.emit()
            return
        study = v.study_uid or None

        def listed(runs: "list[RunSummary]") -> None:
            n = len(runs)
            cap = f"{n} run{'s' if n != 1 else ''} for this study" if n else "No runs yet for this study"
            self.history.set_runs(runs, cap, self.current_run_id)
            self.history_changed.emit()

        def failed(f: AuditFailure) -> None:
            if f.unavailable:
                self.window.status.showMessage(f"Audit trail unavailable: {f.message}", 15000)
            else:
                self.history.set_runs([], f"History unavailable: {f.message}")

        self.audit_io.submit(lambda s: s.list_runs(study), listed, failed, name="history")

    def reopen(self: "AskAuditController", run_id: str) -> None:
        """Show a stored run: switch to its series and slice, restore overlays and audit.
        ``run_reopened`` fires with the run id once it is shown."""

        def failed(f: AuditFailure) -> None:
            if f.unavailable:
                self.window.status.showMessage(f"Audit trail unavailable: {f.message}", 15000)
            else:  # damaged/unknown run: a message
                self.window.status.showMessage(f"Cannot open the run: {f.message}", 12000)

        self.audit_io.submit(lambda s: s.load_run(run_id), self._show_loaded, failed, name="reopen")

    def _show_loaded(self: "AskAuditController", loaded: "LoadedRun") -> None:
        rec = loaded.record
        target = next((v for v in self.window.volumes if v.series_uid == rec.input.series_uid), None)
        note = ""
        if target is not None:
            if target is not self.window.current_volume:
                self.window.show_volume(target)
            self.view.set_plane(native_plane(target))
            self.view.set_slice(rec.input.slice_index)
        else:
            note = "This run's series is not open, so its masks are not drawn on the image."
        self.current_run_id = rec.run_id
        self.current_persisted = True
        self.ask.set_question(rec.question)  # Ask, Audit and History show the same run
        self.current_patient = loaded.patient
        self.audit.show_record(rec, loaded.overrides, on_view=target is not None, note=note)
        self.audit_dock.raise_()
        self.history.set_runs(self.history.runs, self.history.caption.text(), rec.run_id)
        self._update_actions()
        self.run_reopened.emit(rec.run_id)
