"""A study-scope run's ``study`` section as finished strings (panel, PDF and terminal share them)."""
from __future__ import annotations

from app.pipeline.record import InputInfo
from app.pipeline.study_record import StudyScope
from app.pipeline.vocab import RunStatus

from .formatting import elide, fmt_prob
from .study_model import StudySliceRow, StudyView


def _nouns(study: StudyScope, inp: InputInfo) -> str:
    if inp.temporal:
        return "frames"
    plane = (study.plane or inp.plane or "").strip().lower()
    if plane in ("image", "projection"):
        return "images"
    return f"{plane + ' ' if plane else ''}slices"


def numbers_text(numbers: list[int]) -> str:
    return ", ".join(str(k) for k in numbers)


def evidence_numbers(study: StudyScope) -> list[int]:
    """The slices the answer rests on, 1-based: those the aggregation counted; before an
    aggregation (a cancelled run), the slices answered so far."""
    if study.aggregation is not None:
        return sorted({v.index + 1 for v in study.aggregation.inputs})
    return sorted(s.number for s in study.answered if s.answer.strip())


def study_scope_text(study: StudyScope, inp: InputInfo) -> str:
    """"about the whole study (evidence from axial slices 12, 13, 14 of 61)": the slices whose
    answers the aggregation counted, 1-based as the viewer numbers them."""
    used = evidence_numbers(study)
    if not used:
        return "about the whole study (no evidence slice gave a usable answer)"
    nouns = _nouns(study, inp)
    if len(used) == 1:
        nouns = nouns[:-1]
    return f"about the whole study (evidence from {nouns} {numbers_text(used)} of {study.num_slices})"


def _per_slice_c(m) -> str:
    """"; per-slice C 0.74-0.78 (median 0.77) over 3 slices": the kept slices' mask confidence."""
    kept = sorted(float(p["confidence"]) for p in m.per_slice if p.get("included"))
    if not kept:
        return ""
    mid = kept[len(kept) // 2] if len(kept) % 2 else (kept[len(kept) // 2 - 1] + kept[len(kept) // 2]) / 2
    return (f"; per-slice C {kept[0]:.2f}\u2013{kept[-1]:.2f} (median {mid:.2f}) over {len(kept)} "
            f"slice{'s' if len(kept) != 1 else ''}")


def mask3d_rows(m) -> tuple[tuple[str, str], ...]:
    """The 3-D lesion's figures, one (label, value) row each; mm only where the file has spacing."""
    no_mm = " (the file has no spacing: mm unknown)"
    vol = f"{m.volume_ml:.2f} mL ({m.voxels:,} voxels)" if m.volume_ml is not None else f"{m.voxels:,} voxels{no_mm}"
    ext = (f"slices {m.first + 1}\u2013{m.last + 1}: {m.extent_slices} slice{'s' if m.extent_slices != 1 else ''}"
           + (f", {m.extent_mm:.1f} mm" if m.extent_mm is not None else no_mm))
    diam = (f"{m.largest_diameter_mm:.1f} mm" if m.largest_diameter_mm is not None
            else f"{m.largest_diameter_px:.1f} px{no_mm}")
    if m.diameter_slice is not None:
        diam += f" on slice {m.diameter_slice + 1}"
    conf = _per_slice_c(m).removeprefix("; per-slice C ") or "no slice kept"
    return (("Volume", vol), ("Extent", ext), ("Largest axial diameter", diam), ("Per-slice mask confidence C", conf),
            ("Propagation", f"{m.backend} ({m.rules} rules) from slice {m.seed_slice + 1}; stopped at the ends by: "
                            f"{', '.join(m.stop_reasons) or '-'}"))


def study_view(study: StudyScope, inp: InputInfo) -> StudyView:
    agg = study.aggregation
    counted = {v.index for v in agg.inputs} if agg else set()
    winners = set(agg.winner_slices) if agg else set()
    n = study.num_slices
    rows = []
    for s in study.slices:
        if s.area_px:
            score = f"{s.area_px:,} px cross-section, C {s.confidence:.2f}" if s.confidence is not None else f"{s.area_px:,} px"
        else:
            score = "no confident cross-section here" + (f" (best C {s.confidence:.2f})" if s.confidence is not None else "")
        if s.status == RunStatus.COMPLETED:
            answer = (f"{elide(' '.join(s.answer.split()), 80) or '(no usable answer)'}"
                      f" (answer probability {fmt_prob(s.answer_prob)})")
        else:
            answer = f"not answered: {s.status}" + (f" ({s.error})" if s.error else "")
        rows.append(StudySliceRow(
            index=s.index, number=s.number, title=f"Slice {s.number}/{n} \u00b7 {s.role}", score_text=score,
            answer_text=answer, status_text=str(s.status), image_file=s.image_file, counted=s.index in counted,
            winner=s.index in winners, in_run=s.in_run))
    used = evidence_numbers(study)
    rule = agg.rule if agg else "(not aggregated: the run stopped first)"
    decided = f"Decided by {agg.decided_by.value}: {agg.detail}." if agg else ""
    counts = (", ".join(f"\u201c{elide(k, 40)}\u201d: {c}" for k, c in sorted(agg.counts.items(), key=lambda kv: -kv[1]))
              if agg and agg.counts else "none")
    if used:
        rests = (f"The answer rests on {_nouns(study, inp)} {numbers_text(used)} of {n} (numbered as the viewer's "
                 f"Im: k/n), aggregated by: {rule}.")
    else:
        rests = "No evidence slice gave a usable answer, so the study has no answer."
    m = study.mask3d
    mask3d = ""
    if m is not None:
        vol = f"{m.volume_ml:.2f} mL" if m.volume_ml is not None else f"{m.voxels} voxels (no spacing in the file)"
        ext = f", {m.extent_mm:.1f} mm" if m.extent_mm is not None else ""
        diam = (f"{m.largest_diameter_mm:.1f} mm" if m.largest_diameter_mm is not None
                else f"{m.largest_diameter_px:.1f} px")
        mask3d = (f"3-D mask ({m.backend}, from slice {m.seed_slice + 1}): {vol}; slices {m.first + 1}\u2013{m.last + 1} "
                  f"({m.extent_slices} slices{ext}); largest axial diameter {diam}"
                  + (f" on slice {m.diameter_slice + 1}" if m.diameter_slice is not None else "")
                  + f"; stopped: {', '.join(m.stop_reasons)}" + _per_slice_c(m) + ".")
    looked = numbers_text([k + 1 for k in study.sampled_slices])
    looked_at = (f"Looked at {len(study.sampled_slices)} slice(s): {looked}; {study.embedded_slices} embedded "
                 f"for segmentation; {study.localisation_seconds:.1f} s." if study.sampled_slices else "")
    primary = (f"The entities, masks, evidence, answers and vote shown for this run are those of slice "
               f"{study.primary_slice + 1}/{n} (the first evidence slice); the other slices' runs are kept whole "
               "in the record." if study.primary_slice is not None else "")
    scope = study_scope_text(study, inp)
    lines = [f"study: {scope}", f"  localised by {study.route.value if study.route else '(not finished)'}: "
             f"{study.route_note}", f"  evidence slices: {study.selection}"]
    lines += [f"  slice {r.number}: {r.answer_text}{'  (gave the answer)' if r.winner else ''}" for r in rows]
    lines += [f"  rule: {rule}"] + ([f"  {decided}"] if decided else [])
    if mask3d:
        lines.append(f"  {mask3d}")
    return StudyView(
        scope=scope, rests_on=rests, route_text=(f"Localised by {study.route.value}: {study.route_note}."
                                                if study.route else "The localisation did not finish."),
        looked_at_text=looked_at, selection_text=f"Evidence slices: {study.selection}.", rows=tuple(rows),
        rule_text=f"Aggregation rule: {rule}.", decided_text=decided, counts_text=f"Slices per answer: {counts}.",
        mask3d_text=mask3d, primary_note=primary, terminal_lines=tuple(lines),
        mask3d_rows=mask3d_rows(m) if m is not None else ())
