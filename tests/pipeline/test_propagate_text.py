"""``segment --text ENTITY --propagate`` with the tiny SAM3 (random weights): the mechanics of the
text route's propagation (slices visited, one embedding per slice, stop reasons, the written
file's geometry), never its accuracy (the tiny model's masks are meaningless)."""
from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from functools import partial

import numpy as np
import pytest
import SimpleITK as sitk

from app.pipeline.segmentation import propagate as prop
from app.pipeline.segmentation.embedding_cache import EmbeddingCache
from app.pipeline.segmentation.service import Judging, SegmentationService
from app.pipeline.vocab import StopReason

pytestmark = pytest.mark.slow

SLICE = 33
# Every rule that reads the tiny model's meaningless masks switched off, two slices each way:
# the loop's mechanics alone decide where it stops.
OPEN = prop.PropagationRules(name="open", min_confidence=None, min_area_ratio=None, max_area_ratio=None,
                             min_overlap=None, intensity_z=None, pixel_z=None, max_slices=2)


def _segment(argv, mp) -> tuple[int, str, str, Counter]:
    from app.cli.main import main

    puts: Counter = Counter()
    original = EmbeddingCache.put

    def counting_put(self, key, entry):  # a put is an embedding computed (a cache hit never puts)
        puts[key] += 1
        return original(self, key, entry)

    mp.setattr(EmbeddingCache, "put", counting_put)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["segment", *argv, "--profile", "tiny"])
    return code, out.getvalue(), err.getvalue(), puts


def test_the_profile_presence_gate_stops_a_random_sam3_on_its_seed(tiny_models_dir, ct_dicom_dir, tmp_path):
    """The tiny profile's SAM3 gate (min_object_score 0.5) rejects the random model's seed mask:
    one slice looked at, one embedding, the stop reason said, no file written."""
    out = tmp_path / "m.nii.gz"
    with pytest.MonkeyPatch.context() as mp:
        code, _, err, puts = _segment([str(ct_dicom_dir), "--slice", str(SLICE), "--text", "tumour", "--propagate",
                                       "--out", str(out)], mp)
    assert code == 1 and not out.exists()
    assert f"slice {SLICE}: " in err and ", presence " in err and "IoU head" not in err
    assert "gave no mask to propagate" in err
    assert len(puts) == 1 and max(puts.values()) == 1
    reason = err.split("gave no mask to propagate (")[1].split(")")[0]
    assert reason in {StopReason.LOW_PRESENCE.value, StopReason.EMPTY.value}


def test_text_propagation_visits_each_slice_once_and_writes_the_series_geometry(tiny_models_dir, ct_dicom_dir,
                                                                                ct_volume, tmp_path):
    out = tmp_path / "m.nii.gz"
    with pytest.MonkeyPatch.context() as mp:
        # No presence gate and open rules: the random model's masks go as far as the slice budget.
        mp.setattr(SegmentationService, "judging", lambda self, role: Judging())
        mp.setattr(prop, "propagate_text", partial(prop.propagate_text, rules=OPEN))
        code, stdout, err, puts = _segment([str(ct_dicom_dir), "--slice", str(SLICE), "--text", "tumour",
                                            "--propagate", "--out", str(out), "--json"], mp)
    assert code == 0, err
    payload = json.loads(stdout)
    rows = payload["per_slice"]
    visited = [r["slice"] for r in rows]
    assert visited == list(range(SLICE - 2, SLICE + 3))
    assert all(r["box"] is None for r in rows)  # the prompt was the text on every slice, never a box
    assert payload["text"] == "tumour" and payload["box"] is None and payload["model"]["backend"] == "sam3"
    assert set(payload["stop_reasons"].values()) == {StopReason.MAX_SLICES.value}
    # One embedding per visited slice, none twice (a slice an earlier call embedded is a cache hit).
    assert payload["slices_embedded"] == len(visited)
    assert max(puts.values()) == 1 and len(visited) - 1 <= len(puts) <= len(visited)
    # The label volume: the series' geometry, labelled exactly on the included slices.
    img = sitk.ReadImage(str(out))
    ref = ct_volume
    assert img.GetSize() == tuple(int(v) for v in reversed(ref.array.shape[:3]))
    src = sitk.ReadImage(sorted(str(p) for p in ct_dicom_dir.glob("*.dcm")))
    assert np.allclose(img.GetSpacing(), src.GetSpacing()) and np.allclose(img.GetOrigin(), src.GetOrigin())
    assert np.allclose(img.GetDirection(), src.GetDirection())
    arr = sitk.GetArrayFromImage(img)
    labelled = [int(k) for k in np.flatnonzero(arr.reshape(arr.shape[0], -1).any(axis=1))]
    included = [r["slice"] for r in rows if r["included"] and r["kept_px"] > 0]
    assert labelled == included and included
    for r in rows:
        assert int(arr[r["slice"]].sum()) == r["kept_px"]


def test_propagate_text_needs_a_text_segmenter(ct_volume):
    from app.pipeline.types import PipelineError
    from app.study.display_frame import display_frame

    service = SegmentationService(lambda role: None)
    with pytest.raises(PipelineError, match="no text-prompted segmenter"):
        prop.propagate_text(service, ct_volume, display_frame(ct_volume), SLICE, "tumour")
