"""What a study-scope question costs against a slice-scope one, on the shared chest CT.

    .venv/bin/python benchmarks/bench_study_scope.py [--tokens T] [--device cpu|cuda]

Tiny profile (random VLM, real LiteMedSAM) with a clinician box on the labelled tumour: one
slice-scope question, then the same question with ``--scope study`` (the box propagated in 3-D,
at most 3 evidence slices, each through CARE-Flow). Prints the study run's localisation time,
seconds per propagated (embedded) slice, seconds per evidence slice, and the study/slice ratio
measured in the same process; the absolute times depend on the machine (figures only, never
checked).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QUESTION = "Is there a mass in the left lung?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=16, help="max new tokens per generation (tiny model)")
    ap.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    args = ap.parse_args()

    from app.devtools.scratch_home import use_scratch_home

    use_scratch_home("care-bench-")
    import SimpleITK as sitk

    from app.devtools.tiny_models import ensure_tiny_models
    from app.pipeline.engine import CarePipeline
    from app.pipeline.profiles import load_profile
    from app.pipeline.strategies import strategy_for
    from app.pipeline.study_scope import study_strategy
    from app.study.loader import load

    data = Path(os.environ.get("CARE_SHARED_DATA", REPO.parent / "shared" / "data")) / "ct-chest-lung1"
    ensure_tiny_models()
    volume = load([data / "dicom"]).volumes[0]
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "lung1_label.nrrd"))) > 0
    areas = label.reshape(label.shape[0], -1).sum(axis=1)
    k = int(areas.argmax())
    ys, xs = np.nonzero(label[k])
    box = (int(xs.min()) - 8, int(ys.min()) - 8, int(xs.max()) + 9, int(ys.max()) + 9)  # a loose drawn box
    present = np.flatnonzero(areas)
    print(f"slice {k} of {volume.num_slices}, box {box}, label on slices {present[0]}..{present[-1]}")

    pipe = CarePipeline(load_profile("tiny"), max_new_tokens=args.tokens, entity_max_new_tokens=args.tokens,
                        device=args.device)
    t0 = time.perf_counter()
    pipe.run(volume, k, QUESTION, boxes=[box])  # loads the models
    print(f"warm-up (loads the models): {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    one = pipe.run(volume, k, QUESTION, boxes=[box])
    t_slice = time.perf_counter() - t0
    # The slice run left slice k's embedding in the cache (as a session would); the study run
    # embeds every other slice it looks at.
    t0 = time.perf_counter()
    rec = pipe.run(volume, k, QUESTION, boxes=[box], strategy=study_strategy(pipe, strategy_for("flow", pipe)))
    t_study = time.perf_counter() - t0
    st = rec.study
    assert st is not None and rec.status == "completed", rec.errors
    n_ev = len(st.slices)
    print(f"slice scope: {t_slice:.1f} s ({one.status})")
    print(f"study scope: {t_study:.1f} s ({rec.status}); evidence slices {st.evidence_numbers} (1-based), "
          f"inside the label: {all(present[0] <= s <= present[-1] for s in st.evidence_slices)}")
    print(f"  localisation {st.localisation_seconds:.1f} s over {st.embedded_slices} embedded slices: "
          f"{st.localisation_seconds / max(st.embedded_slices, 1):.2f} s per propagated slice")
    rest = t_study - st.localisation_seconds
    print(f"  evidence runs {rest:.1f} s for {n_ev} slices: {rest / max(n_ev, 1):.1f} s per evidence slice")
    print(f"  study / slice: {t_study / max(t_slice, 1e-9):.2f}x")
    if st.mask3d is not None:
        m = st.mask3d
        print(f"  3-D mask: slices {m.first + 1}-{m.last + 1}, {m.volume_ml:.2f} mL")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
