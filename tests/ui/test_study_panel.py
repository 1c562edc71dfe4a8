"""The study scope in the window's widgets: the Ask panel's Scope choice reaches the run request
and picks the study strategy; the audit panel shows the evidence slices of a real study-scope
run (thumbnails of the pixels the models saw) and a click goes to that slice in the viewer."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.pipeline.run_io import read_run
from app.pipeline.vocab import Scope


@pytest.fixture(scope="module")
def study_record(study_run):
    return read_run(study_run.out)


def test_the_ask_panel_offers_the_scope(qtbot):
    from app.ui.ask_panel import AskPanel

    panel = AskPanel()
    qtbot.addWidget(panel)
    assert [panel.scope.itemText(i) for i in range(panel.scope.count())] == ["this slice", "whole study"]
    assert panel.selected_scope() == "slice"  # the default stays the slice
    panel.scope.setCurrentIndex(1)
    assert panel.selected_scope() == Scope.STUDY.value


def test_a_study_request_runs_the_study_strategy(tiny_pipeline_factory, ct_volume):
    from app.pipeline.strategies import FlowStrategy
    from app.pipeline.study_scope import StudyStrategy
    from app.ui.run_worker import PipelineCache, RunRequest, _strategy

    pipes = PipelineCache()
    pipe = tiny_pipeline_factory()
    pipes.put("tiny", pipe)
    study = _strategy(pipes, RunRequest(ct_volume, 3, "q", "tiny", scope=Scope.STUDY), pipe)
    assert isinstance(study, StudyStrategy) and isinstance(study.inner, FlowStrategy) and study.host is pipe
    assert isinstance(_strategy(pipes, RunRequest(ct_volume, 3, "q", "tiny"), pipe), FlowStrategy)


@pytest.mark.slow
def test_the_audit_panel_shows_the_evidence_slices_and_jumps(qtbot, view, ct_volume, study_record):
    from app.ui.audit.panel import AuditPanel
    from app.ui.slice_renderer import qimage_to_numpy

    view.set_volume(ct_volume)
    view.set_slice(0)
    panel = AuditPanel(view)
    qtbot.addWidget(panel)
    panel.resize(480, 900)
    panel.show()
    panel.show_record(study_record)
    study = study_record.study
    assert panel.sec_study.isVisible() and len(panel.study_frames) == len(study.slices)
    text = " ".join(w.text() for w in panel.sec_study.findChildren(type(panel.header.status_label)))
    nums = ", ".join(str(v.index + 1) for v in sorted(study.aggregation.inputs, key=lambda v: v.index))
    assert f"The answer rests on axial slices {nums} of 48" in text
    for s in study.slices:
        assert f"Slice {s.number}/48" in text
    # The header says the whole study, with the slices.
    assert f"evidence from axial slices {nums} of 48" in " ".join(
        w.text() for w in panel.header.findChildren(type(panel.header.status_label)))
    jumped = []
    panel.slice_requested.connect(jumped.append)
    for frame, s in zip(panel.study_frames, study.slices):
        # The thumbnail is the windowed slice the models saw (scaled), not a placeholder.
        from PySide6.QtWidgets import QLabel

        thumb = frame.findChild(QLabel, "StudySliceThumb")
        shown = qimage_to_numpy(thumb.pixmap().toImage())
        assert shown.shape[0] == shown.shape[1] == 96 and shown.std() > 10
        ref = s.image[::512 // 96, ::512 // 96][:96, :96].astype(float)
        assert abs(shown[..., :3].astype(float).mean() - ref.mean()) < 12
        view.set_slice(0)
        qtbot.mouseClick(frame, Qt.MouseButton.LeftButton)
        assert view.slice_index == s.index
    assert jumped == [s.index for s in study.slices]
    # The primary slice's masks are drawn on its own slice.
    assert any(n.startswith("care:mask") for n in view.overlays.names())
    assert np.array_equal(study.slices[0].image, study_record.slice_rgb)
