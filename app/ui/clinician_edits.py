"""Clinician edits of a run, the controller's side: discarding/restoring a mask and drawing a
box (LiteMedSAM segments it) become overrides appended through the audit queue; a box drawn
on a slice without a run is kept "pending" for the next question on that slice."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.study.display_frame import display_frame
from app.study.volume import Volume, Window

from .audit_panel import MaskEntry
from .audit_worker import AuditFailure
from .run_worker import BoxOutcome, current_user, segment_box_task
from .workers import Worker

if TYPE_CHECKING:
    from app.pipeline.record import Override

    from .ask_audit import AskAuditController

PENDING_PREFIX = "box:pending:"

Box = tuple[int, int, int, int]


def record_window(win: dict | None) -> Window | None:
    """The display window a record carries (its ``input.window``), as a :class:`Window`."""
    return Window(float(win["center"]), float(win["width"]), str(win.get("name", ""))) if win else None


class ClinicianEditsMixin:
    """Overrides and drawn boxes (part of :class:`~app.ui.ask_audit.AskAuditController`)."""

    box_worker: Worker | None
    # Boxes drawn on a slice without a run yet: (series uid, slice) -> [(box, mask record)]
    pending: dict[tuple[str, int], list[tuple[Box, Any]]]

    # ================================================================= overrides ==
    def _append_override(self: "AskAuditController", run_id: str | None, kind: str, detail: dict) -> None:
        """Queue one override of ``run_id`` (nothing for an unsaved run); the audit panel
        and the history follow once it is recorded."""
        if not run_id:
            return

        def recorded(overrides: "list[Override]") -> None:
            if run_id == self.current_run_id:
                self.audit.set_overrides(overrides)
            self.refresh_history()

        def failed(f: AuditFailure) -> None:
            if f.unavailable:
                self.window.status.showMessage(f"Audit trail unavailable: {f.message}", 15000)
            else:  # the run is not in the store (unsaved): say so
                self.window.status.showMessage(f"The change could not be recorded: {f.message}", 10000)

        who = current_user()
        self.audit_io.submit(lambda s: s.append_override(run_id, kind, detail, who=who), recorded, failed,
                             name="override")

    def _on_discard(self: "AskAuditController", entry: MaskEntry, discarded: bool) -> None:
        m = entry.mask
        target = f"masks[{entry.index}]" if entry.index is not None else f"drawn box {entry.key.rsplit(':', 1)[-1]}"
        old = ("accepted" if m.accepted else "below tau") if discarded else "discarded"
        new = "discarded" if discarded else ("accepted" if m.accepted else "below tau")
        self._append_override(self.current_run_id if self.current_persisted else None,
                              "mask_discard" if discarded else "mask_restore",
                              {"target": target, "old": old, "new": new, "note": f"{m.entity} (C={m.confidence:.3f})"})
        if entry.index is None:  # a drawn box in or out of the next question on this slice
            self._update_target()

    # ===================================================================== boxes ==
    def set_draw_mode(self: "AskAuditController", on: bool) -> None:
        self.draw_tool.set_active(on)

    def _on_draw_active(self: "AskAuditController", on: bool) -> None:
        self.act_draw.blockSignals(True)
        self.act_draw.setChecked(on)
        self.act_draw.blockSignals(False)
        self.audit.set_draw_active(on)
        if on:
            self.window.status.showMessage("Draw box: left-drag around a structure (Esc to stop)", 8000)

    def _segment_profile(self: "AskAuditController") -> str:
        rec = self.audit.record
        return rec.profile if rec is not None else self.ask.selected_profile()

    def segment_box(self: "AskAuditController", slice_index: int, box: Box) -> Worker | None:
        """Segment a drawn box with the profile's box-prompted segmenter (LiteMedSAM)."""
        v = self.window.current_volume
        if v is None or self.box_worker is not None:
            return None
        rec = self.audit.record
        edit = (rec is not None and rec.input.slice_index == slice_index
                and (not rec.input.series_uid or rec.input.series_uid == v.series_uid))
        if edit:
            window = record_window(rec.input.window) or v.window
            n = sum(1 for e in rec.entities.final if e.source == "clinician") + sum(
                1 for e in self.audit.entries if e.index is None)
        else:
            window = self.view.window
            n = len(self.pending.get((v.series_uid, slice_index), []))
        name = f"clinician region {n + 1}"
        profile = self._segment_profile()
        if self.lesion3d.wants():  # the box tool's 3-D option (app.ui.lesion3d_control)
            return self.lesion3d.start(slice_index, box, profile, window)
        self.window.status.showMessage(f"Segmenting the box with {profile}'s box segmenter\u2026")
        pipelines = self.pipelines
        worker = Worker(lambda ctx: segment_box_task(pipelines, profile, v, slice_index, window, box, name),
                        name="box segmentation")
        self.box_worker = worker
        # Busy cue: the box stays drawn with a busy cursor until _on_box (seconds on a CPU).
        self.draw_tool.show_segmenting(slice_index, box)
        worker.signals.finished.connect(lambda out, e=edit, vol=v: self._on_box(out, e, vol))
        worker.signals.errored.connect(lambda msg: self._on_box(BoxOutcome(None, slice_index, box, msg), False, v))
        worker.start()
        return worker

    def _on_box(self: "AskAuditController", out: BoxOutcome, edit: bool, volume: Volume) -> None:
        self.box_worker = None
        self.draw_tool.end_segmenting()
        if out.mask is None:
            self.window.status.showMessage(out.error or "box segmentation failed", 12000)
            self.ask.show_message(out.error or "box segmentation failed", "error", title="Box not segmented")
            self.box_segmented.emit(out)
            return
        m = out.mask
        verdict = "accepted" if m.accepted else f"below \u03c4 {m.tau:.2f}"
        self.window.status.showMessage(f"{m.entity}: {m.backend} mask, confidence {m.confidence:.2f} ({verdict})", 10000)
        if edit and self.audit.record is not None:
            self.audit.add_drawn_mask(m, out.slice_index, out.box)
            self._append_override(self.current_run_id if self.current_persisted else None, "box_added", {
                "target": m.entity, "old": "", "new": list(out.box),
                "note": f"{m.backend} mask on slice {out.slice_index + 1}: C={m.confidence:.3f} ({verdict}), "
                        f"{m.area_px} px"})
            self._update_target()
        else:
            self.pending.setdefault((volume.series_uid, out.slice_index), []).append((out.box, m))
            self._redraw_pending()
            self._update_target()
        self.box_segmented.emit(out)

    def unused_boxes(self: "AskAuditController", volume: Volume, slice_index: int) -> list[Box]:
        """Boxes drawn on this slice that no run has used yet: the pending ones, and those drawn
        over the shown run of this slice (a new question there uses them as Re-ask would: the
        radiologist drew them to be looked at, and must not lose them by typing a new question)."""
        boxes = [b for b, _ in self.pending.get((volume.series_uid, slice_index), [])]
        rec = self.audit.record
        if (rec is not None and rec.input.slice_index == slice_index
                and (not rec.input.series_uid or rec.input.series_uid == volume.series_uid)):
            boxes += [b for b in self.audit.drawn_boxes() if b not in boxes]
        return boxes

    def _redraw_pending(self: "AskAuditController") -> None:
        ov = self.view.overlays
        for name in [n for n in ov.names() if n.startswith(PENDING_PREFIX)]:
            ov.remove(name)
        v = self.window.current_volume
        if v is None:
            return
        from app.audit.report.composite import mask_colour

        i = 0
        for (uid, k), items in self.pending.items():
            if uid != v.series_uid:
                continue
            for box, m in items:
                if m.mask is not None and m.mask.shape == display_frame(v).shape:
                    ov.add(f"{PENDING_PREFIX}{i}", m.mask, mask_colour(6 + i), 0.45, slice_index=k)
                ov.add_box(f"{PENDING_PREFIX}{i}:box", k, box, (255, 255, 255), line_width=1.0,
                           label=f"{m.entity} C {m.confidence:.2f}")
                i += 1
