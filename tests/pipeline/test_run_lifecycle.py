"""The run lifecycle: the caller picks the strategy, the engine only runs stages, and an observer
sees the record start before any model call and finish after the last one."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from app.pipeline.engine import CarePipeline
from app.pipeline.lifecycle import NullObserver, execute_run
from app.pipeline.profiles import Profile, load_profile
from app.pipeline.record import RunRecord
from app.pipeline.strategies import CoordStrategy, FlowStrategy, strategy_for
from app.pipeline.types import Stage, WeightsMissingError
from app.pipeline.vocab import Mode, RunStatus

QUESTION = "Is there a mass in the right lung?"
TOKENS = 24
PIPELINE = Path(__file__).resolve().parents[2] / "app" / "pipeline"


class RecordingObserver(NullObserver):
    def __init__(self, events: list) -> None:
        self.events = events

    def on_started(self, record: RunRecord) -> None:
        self.events.append(("started", record.status))

    def on_progress(self, stage: Stage, message: str, fraction: float) -> None:
        self.events.append(("progress", stage))

    def on_finished(self, record: RunRecord) -> None:
        self.events.append(("finished", record.status))


class _Logged:
    """A backend whose model calls are appended to the shared event list."""

    def __init__(self, inner, role: str, events: list) -> None:
        self._inner, self._role, self._events = inner, role, events

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def generate(self, *args, **kwargs):
        self._events.append(("model", self._role))
        return self._inner.generate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        self._events.append(("model", self._role))
        return self._inner.predict(*args, **kwargs)

    def predict_scored(self, *args, **kwargs):  # the service's call when a backend has object scores
        self._events.append(("model", self._role))
        return self._inner.predict_scored(*args, **kwargs)


class LoggedPipeline(CarePipeline):
    events: list

    def backend(self, role):
        inner = super().backend(role)
        return None if inner is None else _Logged(inner, str(role), self.events)


@pytest.fixture(scope="module")
def tumour(shared_data):
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))) > 0
    k = int(label.reshape(label.shape[0], -1).sum(axis=1).argmax())
    ys, xs = np.nonzero(label[k])
    return k, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _tiny_without_sam3() -> Profile:
    """The tiny profile without its text segmenter (tiny SAM3 is slow on a shared CPU; LiteMedSAM
    takes the box and is a model call all the same)."""
    tiny = load_profile("tiny")
    return Profile("tiny", tiny.description, 0, {r: s for r, s in tiny.models.items() if r != "segmenter"},
                   tiny.weights)


# ----- structure -----------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(("." * node.level) + node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_engine_knows_no_modes_and_no_coordinator():
    src = (PIPELINE / "engine.py").read_text()
    imports = _imports(PIPELINE / "engine.py")
    assert not any("coordinator" in m or "strategies.coord" in m for m in imports), imports
    assert "mode ==" not in src and "self.coordinator" not in src and "build_coordinator" not in src


def test_the_engine_provides_every_member_of_the_stages_host():
    from app.pipeline.stages import PipelineHost, RunPreparer, Stages

    pipe_members = set(dir(CarePipeline)) | set(CarePipeline.__init__.__code__.co_names)
    for proto in (Stages, PipelineHost, RunPreparer):
        wanted = {n for n in vars(proto) if not n.startswith("_")} | set(getattr(proto, "__annotations__", {}))
        assert wanted <= pipe_members, (proto.__name__, wanted - pipe_members)


def test_coordinator_package_never_imports_the_engine():
    for path in (PIPELINE / "coordinator").glob("*.py"):
        assert not any(m.endswith("engine") for m in _imports(path)), path


def test_strategy_for_picks_by_mode(tiny_models_dir):
    pipe = CarePipeline(load_profile("tiny"))
    flow, coord = strategy_for("flow", pipe), strategy_for(Mode.COORD, pipe)
    assert isinstance(flow, FlowStrategy) and flow.mode is Mode.FLOW and flow.stages is pipe
    assert isinstance(coord, CoordStrategy) and coord.mode is Mode.COORD and coord.coordinator is None  # lazy
    assert strategy_for("coord", pipe, eager=True).coordinator is not None


# ----- a custom strategy through execute_run -------------------------------------------------
@pytest.mark.slow
def test_a_custom_strategy_runs_through_execute_run(tiny_models_dir, ct_volume, tumour):
    """The caller's strategy decides what runs; the record's mode is the strategy's."""
    k, box = tumour
    pipe = CarePipeline(_tiny_without_sam3(), max_new_tokens=TOKENS, entity_max_new_tokens=TOKENS)
    seen = []

    class MasksOnly:  # entities and masks, no VQA: something neither CARE-Flow nor CARE-Coord does
        mode = Mode.COORD

        def __init__(self, stages):
            self.stages = stages

        def run(self, ctx):
            seen.append(ctx.record)
            entities = self.stages.propose_entities(ctx)
            self.stages.segment(ctx, entities)

    events: list = []
    record = execute_run(pipe, MasksOnly(pipe), ct_volume, k, QUESTION, boxes=[box],
                         observer=RecordingObserver(events))
    assert seen == [record] and record.status is RunStatus.COMPLETED and record.finished
    assert record.mode is Mode.COORD and record.to_dict()["mode"] == "coord"
    assert [t.stage for t in record.timings] == [Stage.ENTITIES, Stage.MASKS]
    assert record.answers == [] and record.vote is None and record.coordinator == []
    assert any(m.entity == "clinician region 1" for m in record.masks)
    assert events[0] == ("started", RunStatus.RUNNING) and events[-1] == ("finished", RunStatus.COMPLETED)


# ----- observer order on the tiny pipeline ---------------------------------------------------
@pytest.mark.slow
def test_observer_sees_started_before_any_model_call_and_finished_after(tiny_models_dir, ct_volume, tumour):
    k, box = tumour
    events: list = []
    pipe = LoggedPipeline(_tiny_without_sam3(), max_new_tokens=TOKENS, entity_max_new_tokens=TOKENS)
    pipe.events = events
    record = pipe.run(ct_volume, k, QUESTION, strategy=strategy_for(Mode.FLOW, pipe), boxes=[box],
                      observer=RecordingObserver(events))
    assert record.status == "completed", record.errors
    kinds = [e[0] for e in events]
    models = [e for e in events if e[0] == "model"]
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("started") == kinds.count("finished") == 1
    assert models == [("model", "entity"), ("model", "box_segmenter"), ("model", "vqa")]
    assert events[-1] == ("finished", RunStatus.COMPLETED)
    assert ("progress", Stage.REVIEW) in events  # progress reaches the observer


def test_missing_weights_close_the_started_record_then_propagate(empty_models_dir, ct_volume):
    events: list = []
    records: list = []

    class Keep(RecordingObserver):
        def on_finished(self, record):
            records.append(record)
            super().on_finished(record)

    with pytest.raises(WeightsMissingError, match="care-viewer models fetch tiny"):
        CarePipeline(load_profile("tiny")).run(ct_volume, 10, QUESTION, observer=Keep(events))
    assert events == [("started", RunStatus.RUNNING), ("finished", RunStatus.FAILED)]
    (record,) = records
    assert record.finished and "care-viewer models fetch tiny" in record.errors[0]
