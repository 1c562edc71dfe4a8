"""Measurements in the window: the Measure tools (length M, angle A, rectangle Q, ellipse E),
their drawing on the view, the Measurements panel and their recording with an open run.

- Measurements belong to the study session (:class:`~app.study.measurements.MeasurementSession`):
  kept across slices, planes and series of a study, and shown again when that study is
  opened again in this window.
- Their numbers are computed once, when drawn or edited, from the series they were drawn on.
- While a saved run of the series is open (Audit panel), each new, edited or deleted
  measurement on that series is appended to the audit trail as an override
  (``measurement`` / ``measurement_removed``): the run's record is never rewritten, and the
  PDF report lists the measurements in effect. "Record with run" adds those made before the
  run was opened.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPointF, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence

from app.audit.present.measurements import live_measurements
from app.pipeline.vocab import OverrideKind
from app.study.measurements import (
    MeasureKind,
    Measurement,
    MeasurementSession,
    MeasureResult,
    Point,
    measure,
    series_key,
    study_key,
)
from app.study.reformat import slice_geometry
from app.study.volume import Volume

from .measure_overlay import MeasureOverlay, Shown
from .measure_panel import MeasurePanel, PanelRow
from .measure_tool import HANDLE_PX, MeasureTool
from .theme import icon

if TYPE_CHECKING:
    from .main_window import MainWindow

TOOLS: tuple[tuple[MeasureKind, str, str, str], ...] = (
    (MeasureKind.LENGTH, "M", "mdi6.ruler", "Left-drag a line: its length in mm (px when uncalibrated)"),
    (MeasureKind.ANGLE, "A", "mdi6.angle-acute", "Three clicks: arm end, vertex, arm end"),
    (MeasureKind.RECTANGLE, "Q", "mdi6.rectangle-outline", "Left-drag a rectangle: mean/SD/min/max and area"),
    (MeasureKind.ELLIPSE, "E", "mdi6.ellipse-outline", "Left-drag an ellipse: mean/SD/min/max and area"),
)


class MeasureController(QObject):
    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window = window
        self.view = window.view
        self.care = getattr(window, "care", None)
        self.session = MeasurementSession()
        self.results: dict[str, MeasureResult] = {}
        self.selected: str | None = None
        self.recorded: dict[str, set[str]] = {}  # run id -> ids of the measurements in effect there
        self.tool = MeasureTool(self.view, self._handle_at, self)
        self.overlay = MeasureOverlay(self.view, self._shown, lambda: self.selected, lambda: self.tool.preview)
        self.panel = MeasurePanel(window)
        self.dock = window.add_dock("Measurements", self.panel, object_name="dock-measurements")
        audit_dock = getattr(self.care, "audit_dock", None)
        if audit_dock is not None:  # a tab next to Audit and History, not next to Ask
            window.tabifyDockWidget(audit_dock, self.dock)
            audit_dock.raise_()
        self._build_actions()
        self._wire()
        self.refresh()

    # ============================================================== construction ==
    def _build_actions(self) -> None:
        w = self.window
        self.group = QActionGroup(self)
        self.group.setExclusionPolicy(QActionGroup.ExclusionPolicy.ExclusiveOptional)
        self.actions: dict[MeasureKind, QAction] = {}
        for kind, key, ic, tip in TOOLS:
            a = QAction(icon(ic), f"Measure {kind.label}", w)
            a.setCheckable(True)
            a.setShortcut(QKeySequence(key))
            a.setToolTip(f"{kind.label}: {tip}  ({key})")
            a.toggled.connect(lambda on, k=kind: self._on_action(k, on))
            self.group.addAction(a)
            w.addAction(a)
            self.actions[kind] = a
        self.act_delete = QAction(icon("mdi6.delete-outline"), "Delete Measurement", w)
        self.act_delete.setShortcuts([QKeySequence(Qt.Key.Key_Delete), QKeySequence(Qt.Key.Key_Backspace)])
        # Only where measurements are (the view, the panel): Delete in a text field stays a Delete.
        self.act_delete.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.act_delete.triggered.connect(lambda: self.delete(self.selected))
        self.view.addAction(self.act_delete)
        self.panel.addAction(self.act_delete)
        menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions() if a.menu() is not None}
        tools = menus.get("Tools")
        if tools is not None:
            tools.addSeparator()
            tools.addActions(list(self.actions.values()))
            tools.addAction(self.act_delete)
        tb = getattr(w, "toolbar", None)
        if tb is not None:
            tb.addSeparator()
            tb.addActions(list(self.actions.values()))

    def _wire(self) -> None:
        w, t, p = self.window, self.tool, self.panel
        t.drawn.connect(self._on_drawn)
        t.edited.connect(self._on_edited)
        t.clicked.connect(lambda pos: self.select(self._measurement_at(pos)))
        t.kind_changed.connect(self._on_kind)
        t.preview_changed.connect(self.overlay.update)
        t.rejected.connect(lambda msg: w.status.showMessage(msg, 6000))
        p.selected.connect(self.show_measurement)
        p.delete_requested.connect(self.delete)
        p.record_requested.connect(self.record_all)
        w.volume_shown.connect(lambda _v: (self.tool.cancel(), self.refresh()))
        if self.care is not None:
            c = self.care
            c.draw_tool.active_changed.connect(lambda on: on and self.tool.set_kind(None))
            c.run_finished.connect(lambda _o: self._on_run_changed())
            c.run_reopened.connect(lambda _rid: self._on_run_changed())
            w.study_replaced.connect(self._on_run_changed)

    # ===================================================================== state ==
    def _study(self) -> str | None:
        v = self.window.current_volume
        return study_key(v) if v is not None else None

    def measurements(self) -> list[Measurement]:
        """Those of the displayed study, in drawing order."""
        s = self._study()
        return self.session.for_study(s) if s is not None else []

    def _on_slice(self) -> list[Measurement]:
        v, s = self.window.current_volume, self._study()
        if v is None or s is None or v.provisional:  # its slice 0 is not the series' slice 0
            return []
        return self.session.on_slice(s, series_key(v), self.view.plane, self.view.slice_index)

    def _shown(self) -> list[Shown]:
        return [(m.mid, m.kind, m.points, self.results.get(m.mid)) for m in self._on_slice()]

    def _volume_of(self, series: str) -> Volume | None:
        return next((v for v in self.window.volumes if series_key(v) == series), None) or (
            self.window.current_volume if self.window.current_volume is not None
            and series_key(self.window.current_volume) == series else None)

    # ================================================================== drawing ==
    def _on_action(self, kind: MeasureKind, on: bool) -> None:
        if on:
            self.tool.set_kind(kind)
        elif self.tool.kind is kind:
            self.tool.set_kind(None)

    def _on_kind(self, kind: MeasureKind | None) -> None:
        for k, a in self.actions.items():
            a.blockSignals(True)
            a.setChecked(k is kind)
            a.blockSignals(False)
        if kind is None:
            return
        if self.care is not None and self.care.draw_tool.active:
            self.care.act_draw.setChecked(False)
        tip = next(t for k, _, _, t in TOOLS if k is kind)
        self.window.status.showMessage(f"{kind.label}: {tip}. Drag a point to edit; Esc cancels, Esc again stops", 8000)

    def _on_drawn(self, kind: MeasureKind, points: tuple[Point, ...]) -> None:
        v, s = self.window.current_volume, self._study()
        if v is None or s is None:
            return
        if self.window.is_loading or v.provisional:
            self.window.status.showMessage("Wait for the series to finish loading: its values are still being read",
                                           8000)
            return
        m = Measurement(kind, series_key(v), self.view.plane, self.view.slice_index, points)
        self.results[m.mid] = measure(m, v, self.view.geometry_)
        self.session.add(s, m)
        self.selected = m.mid
        self.refresh()
        self.window.status.showMessage(f"{kind.label}: {self.results[m.mid].text}", 10000)
        self._record(m, None)

    def _on_edited(self, m: Measurement) -> None:
        s = self._study()
        v = self._volume_of(m.series)
        if s is None or v is None or self.session.get(s, m.mid) is None:
            return
        old = self.results.get(m.mid)
        self.session.replace(s, m)
        self.results[m.mid] = measure(m, v, slice_geometry(v, m.plane))
        self.selected = m.mid
        self.refresh()
        self._record(m, old)

    def delete(self, mid: str | None) -> None:
        s = self._study()
        if mid is None or s is None:
            return
        m = self.session.remove(s, mid)
        if m is None:
            return
        if self.selected == mid:
            self.selected = None
        self.tool.cancel()
        self.refresh()
        self._record_removal(m)
        self.window.status.showMessage(f"{m.kind.label} deleted", 5000)

    # =============================================================== selection ==
    def select(self, mid: str | None) -> None:
        self.selected = mid
        self.panel.select(mid)
        self.overlay.update()

    def show_measurement(self, mid: str) -> None:
        """Go to the measurement's series, plane and slice, and highlight it."""
        s = self._study()
        m = self.session.get(s, mid) if s is not None else None
        if m is None:
            return
        v = self._volume_of(m.series)
        if v is None:
            self.window.status.showMessage("That measurement's series is not open", 6000)
            return
        if v is not self.window.current_volume:
            self.window.show_volume(v)
        self.view.set_plane(m.plane)
        self.view.set_slice(m.slice_index)
        self.select(mid)

    def _handle_at(self, pos: QPointF) -> tuple[Measurement, int] | None:
        best: tuple[float, Measurement, int] | None = None
        for m in self._on_slice():
            for i, q in enumerate(m.points):
                w = self.view.image_to_widget(q[0], q[1])
                d = math.hypot(w.x() - pos.x(), w.y() - pos.y())
                if d <= HANDLE_PX and (best is None or d < best[0]):
                    best = (d, m, i)
        return (best[1], best[2]) if best else None

    def _measurement_at(self, pos: QPointF) -> str | None:
        hit = self._handle_at(pos)
        if hit is not None:
            return hit[0].mid
        for m in reversed(self._on_slice()):  # the last drawn is on top
            pts = [self.view.image_to_widget(q[0], q[1]) for q in m.points]
            if m.kind.is_roi:
                x0, x1 = sorted((pts[0].x(), pts[1].x()))
                y0, y1 = sorted((pts[0].y(), pts[1].y()))
                if x0 - 4 <= pos.x() <= x1 + 4 and y0 - 4 <= pos.y() <= y1 + 4:
                    return m.mid
            elif any(_segment_distance(pos, a, b) <= 5 for a, b in zip(pts, pts[1:])):
                return m.mid
        return None

    # ==================================================================== panel ==
    def refresh(self) -> None:
        run_id, run_series = self._open_run()
        recorded = self.recorded.get(run_id, set()) if run_id else set()
        shown = self.window.current_volume
        rows = []
        for n, m in enumerate(self.measurements(), 1):
            r = self.results.get(m.mid)
            where = m.where()
            if shown is None or m.series != series_key(shown):
                v = self._volume_of(m.series)
                where += f" \u00b7 {(v.description or v.modality) if v is not None else 'series not open'}"
            rows.append(PanelRow(m.mid, n, m.kind.label, "\n".join(r.lines) if r else "-", where,
                                 "recorded" if m.mid in recorded else ""))
        if self.selected is not None and all(r.mid != self.selected for r in rows):
            self.selected = None
        self.panel.set_rows(rows, self.selected)
        mine = [m for m in self.measurements() if m.series == run_series]
        if run_id is None:
            self.panel.set_run_state("No saved run open: measurements stay with the study for this session.", False)
        else:
            done = sum(1 for m in mine if m.mid in recorded)
            self.panel.set_run_state(f"Run {run_id[:8]}: {done} of this series' {len(mine)} measurement"
                                     f"{'s' if len(mine) != 1 else ''} recorded with it.", done < len(mine))
        self.overlay.update()

    # ============================================================ run recording ==
    def _open_run(self) -> tuple[str | None, str | None]:
        """The saved run open in the Audit panel and the series key it was asked on."""
        c = self.care
        if c is None or not c.current_persisted or c.current_run_id is None:
            return None, None
        rec = c.audit.record
        if rec is None or rec.run_id != c.current_run_id:
            return None, None
        if rec.input.series_uid:
            return rec.run_id, rec.input.series_uid
        v = self.window.current_volume
        return (rec.run_id, series_key(v)) if v is not None and c.audit.state.on_view else (None, None)

    def _on_run_changed(self) -> None:
        run_id, _ = self._open_run()
        if run_id is not None and self.care is not None and run_id not in self.recorded:
            self.recorded[run_id] = set(live_measurements(self.care.audit.state.overrides))
        self.refresh()

    def _record(self, m: Measurement, old: MeasureResult | None) -> None:
        run_id, series = self._open_run()
        r = self.results.get(m.mid)
        if run_id is None or m.series != series or r is None or self.care is None:
            return
        self.care._append_override(run_id, OverrideKind.MEASUREMENT.value, {
            "target": m.kind.label, "old": old.text if old else "", "new": r.text, "note": m.where(),
            "measurement": m.to_dict(), "result": r.to_dict()})
        self.recorded.setdefault(run_id, set()).add(m.mid)
        self.refresh()

    def _record_removal(self, m: Measurement) -> None:
        run_id, _ = self._open_run()
        if run_id is None or self.care is None or m.mid not in self.recorded.get(run_id, set()):
            return
        r = self.results.get(m.mid)
        self.care._append_override(run_id, OverrideKind.MEASUREMENT_REMOVED.value, {
            "target": m.kind.label, "old": r.text if r else "", "new": "", "note": m.where(),
            "measurement": m.to_dict()})
        self.recorded[run_id].discard(m.mid)
        self.refresh()

    def record_all(self) -> None:
        """Record with the open run this series' measurements it does not have yet."""
        run_id, series = self._open_run()
        if run_id is None:
            return
        done = self.recorded.setdefault(run_id, set())
        for m in self.measurements():
            if m.series == series and m.mid not in done:
                self._record(m, None)


def _segment_distance(p: QPointF, a: QPointF, b: QPointF) -> float:
    dx, dy = b.x() - a.x(), b.y() - a.y()
    L2 = dx * dx + dy * dy
    t = 0.0 if L2 == 0 else max(0.0, min(1.0, ((p.x() - a.x()) * dx + (p.y() - a.y()) * dy) / L2))
    return math.hypot(p.x() - a.x() - t * dx, p.y() - a.y() - t * dy)


def install_measurements(window: "MainWindow") -> MeasureController:
    return MeasureController(window)
