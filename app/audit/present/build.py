"""RunRecord (+ overrides) -> RunPresentation: every string a run shows, computed once."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from app.pipeline.disclosure import NOT_RECORDED
from app.pipeline.flow import agreement as vote_agreement
from app.pipeline.record import InputInfo, MaskRecord, Override, RunRecord
from app.pipeline.types import EvidenceType, Stage
from app.pipeline.vocab import ConfidenceGate, DecisionSource, EntitySource, Mode, RunStatus, TieBreak

from .formatting import elide, elide_name, fmt_prob, fmt_prob3, fmt_time, sentence, short_hash
from .model import (
    AnswerRow, Entities, EntityRow, EvidenceRow, Header, MaskRow, ModelRow, RunPresentation,
    TimingRow, VoteRow, VoteSummary,
)
from .overrides import override_rows
from .study import study_scope_text, study_view
from .texts import (
    DISCLAIMER, EVIDENCE_LABELS, EVIDENCE_TITLES, FALLBACK_HOW, FALLBACK_LABEL, MODE_LABELS, REPORT_TITLE,
    STATUS_LABELS, TIE_RULES,
)
from .timeline import coordinator

ANSWER_CHARS = 180  # longer answers are elided in a header
NAME_CHARS = 28  # mask names in a row


def mode_label(mode: str) -> str:
    return MODE_LABELS.get(mode, mode or "?")


def scope_text(inp: InputInfo) -> str:
    """What an answer rests on: one slice (frame, image) of the series, numbered from 1 as the
    viewer's "Im: k/n" readout; the plane when the record names it."""
    n, k = int(inp.num_slices), int(inp.slice_index) + 1
    if n <= 1:
        return "about this image only"
    if inp.temporal:
        return f"about frame {k}/{n} only"
    plane = (inp.plane or "").strip().lower()
    if plane in ("image", "projection"):
        return f"about image {k}/{n} only"
    return f"about {plane + ' ' if plane else ''}slice {k}/{n} only"


def fallback_reason(r: RunRecord) -> str:
    """Why a completed CARE-Coord run is answered by the CARE-Flow vote ("" when it is not)."""
    d = r.coordinator_decision
    if r.mode != Mode.COORD or r.status != RunStatus.COMPLETED or d is None or d.source != DecisionSource.VOTE:
        return ""
    return f"the coordinator failed ({d.failure})" if d.failure else "the coordinator gave no decision"


def _header(r: RunRecord) -> Header:
    label, severity = STATUS_LABELS.get(r.status, (str(r.status).capitalize(), "neutral"))
    reason = fallback_reason(r)
    if reason:
        label, severity = FALLBACK_LABEL, "warn"
    full = " ".join(r.final_answer.split())
    missing, missing_sev = "", ""
    if not r.final_answer:
        if r.status == RunStatus.COMPLETED:
            missing, missing_sev = "(no usable answer: every evidence pass broke the answer format)", "neutral"
        elif r.status == RunStatus.CANCELLED:
            missing, missing_sev = "(cancelled before an answer)", "warn"
        else:
            missing, missing_sev = "(no answer: the run failed)", "error"
    agreement = ""
    if r.vote is not None and r.vote.winner:
        n = r.vote.counts.get(r.vote.winner, 0)
        # Older records have no independent-pass count: their wording, nothing invented.
        agreement = ((vote_agreement(r.vote) or f"{n} of {len(r.vote.votes)} evidence passes agree")
                     + ("" if r.vote.tie_break == TieBreak.NONE
                        else "; " + TIE_RULES.get(r.vote.tie_break, f"tie broken by {r.vote.tie_break}")))
    mode = mode_label(r.mode)
    h = Header(
        title=REPORT_TITLE,
        subtitle=(f"Run {r.run_id} · {mode} · profile {r.profile or '-'} · status {r.status} · "
                  f"asked {fmt_time(r.created)}"),
        status=str(r.status), status_label=label, severity=severity, mode_label=mode, profile=r.profile,
        created=fmt_time(r.created), finished=fmt_time(r.finished),
        slice_text=f"slice {r.input.slice_index + 1}/{r.input.num_slices}", run_short=r.run_id[:8],
        question=r.question, answer=full, answer_short=elide(full, ANSWER_CHARS),
        answer_missing=missing, answer_missing_severity=missing_sev,
        answer_how=(FALLBACK_HOW if reason else "CARE-Flow majority vote" if r.mode == Mode.FLOW
                    else "CARE-Coord final answer"),
        answer_or_status=r.final_answer.strip() or f"(no answer: run {r.status})",
        agreement=agreement,
        status_reason=f"{reason}; the answer is the CARE-Flow majority vote" if reason else "",
        scope=study_scope_text(r.study, r.input) if r.study is not None else scope_text(r.input),
    )
    if r.study is not None:  # the answer is the aggregation over evidence slices, not one slice's vote
        h = dataclasses.replace(h, **study_header(r))
    return h


def study_header(r: RunRecord) -> dict[str, str]:
    """A study run's answer is the aggregation; a coordinator fallback is the primary slice's only."""
    agg = r.study.aggregation if r.study is not None else None
    out = {"answer_how": "study-scope aggregation over evidence slices", "agreement": ""}
    if agg is not None and agg.winner:
        out = {"answer_how": f"study-scope aggregation ({agg.decided_by.value})",
               "agreement": f"{len(agg.winner_slices)} of {len(agg.inputs)} answered evidence slices give this answer"}
    reason = fallback_reason(r)
    if reason:
        label = STATUS_LABELS.get(r.status, (str(r.status).capitalize(), "neutral"))[0]
        out.update(status_label=label, severity="warn", status_reason=(
            f"on slice {r.input.slice_index + 1} {reason}; that slice's answer is its CARE-Flow majority vote"))
    return out


def _entities(r: RunRecord) -> Entities:
    st = r.entities
    masks_by_name = {m.entity: i for i, m in enumerate(r.masks)}
    rows = []
    for ent in st.final:
        clinician = ent.source == EntitySource.CLINICIAN
        label = elide(ent.name, 40) + ("  (your box)" if clinician else "")
        if ent.box is not None:
            label += f"   [{ent.box[0]},{ent.box[1]} \u2013 {ent.box[2]},{ent.box[3]}]"
        rows.append(EntityRow(ent.name, label, clinician, masks_by_name.get(ent.name)))
    merges = tuple(f"\u21b3 \u201c{name}\u201d merged into \u201c{m.kept}\u201d (cosine {cos:.2f})"
                   for m in st.merges for name, cos in zip(m.merged, m.similarity))
    discarded = tuple(f"\u2715 {name}  (discarded by the clinician before segmentation)" for name in st.discarded)
    proposed = ", ".join(e.name for e in st.proposed)
    notes = [f"Proposed by the entity model: {proposed or 'none'}."]
    for mg in st.merges:
        sims = ", ".join(f"{s:.2f}" for s in mg.similarity)
        notes.append(f"Merged as duplicates of “{mg.kept}”: {', '.join(mg.merged)} (cosine {sims}).")
    if st.discarded:
        notes.append(f"Removed by the clinician before segmentation: {', '.join(st.discarded)}.")
    segmented = {m.entity for m in r.masks}
    unsegmented = [e.name for e in st.final if e.name not in segmented]
    if unsegmented:
        notes.append(f"Kept but without a mask: {', '.join(unsegmented)}.")
    notes.extend(f"Entity output format: {v}." for v in st.format_violations)
    return Entities(tuple(rows), merges, discarded, proposed, "; ".join(st.format_violations), tuple(notes),
                    len(st.final))


_SCORE_NAMES = {"iou_head": "IoU head", "presence": "presence"}


def _confidences(m: MaskRecord) -> str:
    """Both confidences (the gating one first, named) and the object score; "" for old records."""
    if m.confidence_paper is None or m.confidence_roi is None:
        return ""
    gate = m.confidence_gate.value
    values = {ConfidenceGate.ROI: m.confidence_roi, ConfidenceGate.PAPER: m.confidence_paper}
    parts = [f"C_{gate} {values[m.confidence_gate]:.2f} (gates τ)"]
    parts += [f"C_{g.value} {v:.2f}" for g, v in values.items() if g != m.confidence_gate]
    if m.object_score is not None:
        name = _SCORE_NAMES.get(m.object_score_kind, m.object_score_kind or "object score")
        gated = f" (min {m.min_object_score:.2f})" if m.min_object_score > 0 else " (recorded, not gating)"
        parts.append(f"{name} {m.object_score:.2f}{gated}")
    return " · ".join(parts)


def _rejected_by_score(m: MaskRecord) -> bool:
    return (not m.accepted and m.confidence >= m.tau and m.min_object_score > 0
            and (m.object_score is None or m.object_score < m.min_object_score))


def mask_row(i: int, m: MaskRecord) -> MaskRow:
    """The row of one mask (``i``: its index in the run, or the next one for a box drawn since)."""
    both = _confidences(m)
    c_name = f"C_{m.confidence_gate.value}" if both else "C"
    name = _SCORE_NAMES.get(m.object_score_kind, m.object_score_kind or "object score")
    c = f"{c_name} " if both else ""  # a record from before both confidences: the old wording
    if m.accepted:
        state, decision, verdict = (f"accepted ({c}\u2265 \u03c4 {m.tau:.2f})", f"accepted ({c}≥ {m.tau:.2f})",
                                    "accepted")
    elif _rejected_by_score(m):
        low = f"{name} < {m.min_object_score:.2f}"
        state, decision, verdict = f"below min {low}", f"discarded ({low})", f"rejected ({low})"
    else:
        state, decision, verdict = (f"below \u03c4 {m.tau:.2f}", f"discarded ({c}< {m.tau:.2f})",
                                    f"rejected ({c}tau {m.tau:.2f})" if not both else f"rejected ({c_name} < tau {m.tau:.2f})")
    return MaskRow(
        index=i, entity=m.entity, short_name=elide_name(m.entity, NAME_CHARS), backend=m.backend,
        prompt_type=m.prompt_type,
        route=f"{m.backend} \u00b7 {m.prompt_type} prompt" + (f" \u00b7 {m.area_px} px" if m.area_px else ""),
        confidence=float(m.confidence), tau=float(m.tau), accepted=bool(m.accepted),
        confidence_text=f"{m.confidence:.2f}" + (f" ({both})" if both else ""),
        confidence_tip=(f"Confidence {c_name} = 1 \u2212 H / log 2 = {float(m.confidence):.3f}; "
                        f"threshold \u03c4 = {float(m.tau):.2f}" + (f". {both}" if both else "")),
        state_text=state, decision=decision, verdict=verdict,
        area_px=int(m.area_px), area_text=f"{m.area_px:,}",
        bbox_text=", ".join(str(v) for v in m.bbox) if m.bbox else "-", colour_index=i, confidences_text=both,
    )


def _evidence(r: RunRecord) -> tuple[EvidenceRow, ...]:
    out = []
    for i, item in enumerate(r.evidence):
        crop = desc = ""
        if item.type == EvidenceType.CROP and item.crop_rect and not item.fallback:
            x0, y0, x1, y1 = item.crop_rect
            crop = f"Crop x {x0}\u2013{x1}, y {y0}\u2013{y1} ({x1 - x0}\u00d7{y1 - y0} px)"
        elif item.type == EvidenceType.MASK and not item.fallback:
            desc = "The accepted masks as a separate binary image (never painted over the pixels)"
        elif item.type == EvidenceType.GLOBAL:
            desc = "The whole slice, no local evidence"
        out.append(EvidenceRow(
            index=i, type=item.type, title=EVIDENCE_TITLES.get(item.type, item.type.value), crop_text=crop,
            description=desc, entities_text=("From: " + ", ".join(item.entities)) if item.entities else "",
            fallback_text=f"Fell back to the global image: {item.fallback}" if item.fallback else "",
            inputs_text=f"Model inputs: {len(item.images) or len(item.image_files)} image(s)",
            crop_rect=tuple(item.crop_rect) if item.crop_rect else None, entities=tuple(item.entities),
        ))
    return tuple(out)


def _answers(r: RunRecord) -> tuple[AnswerRow, ...]:
    winner = r.vote.winner if r.vote else ""
    out = []
    for a in r.answers:
        title = EVIDENCE_TITLES.get(a.evidence, a.evidence.value).split(" (")[0]
        shown = " ".join(a.answer.split()) or "(no answer)"
        win = bool(winner) and a.normalized == winner
        ell = "\u2026" if len(shown) > 48 else ""
        mark = " \u2714" if win else ""
        item = next((e for e in r.evidence if e.type == a.evidence), None)
        call = r.calls[a.call_index] if 0 <= a.call_index < len(r.calls) else None
        facts = [("Answer", a.answer or "(none)"), ("Normalised", a.normalized or "-"),
                 ("Mean answer-token probability", fmt_prob(a.mean_answer_prob))]
        if item is not None and item.fallback:
            facts.append(("Fallback", f"asked as global: {item.fallback}"))
        if a.same_input_as is not None and 0 <= a.same_input_as < len(r.answers):
            other = r.answers[a.same_input_as].evidence
            facts.append(("Same input as", f"evidence {a.same_input_as + 1} "
                          f"({EVIDENCE_LABELS.get(other, other.value)}): asked once, one vote"))
        if item is not None and item.entities:
            facts.append(("Built from", ", ".join(item.entities)))
        if a.format_violations:
            facts.append(("Format", "; ".join(a.format_violations)))
        if call is not None and call.tokens_note:
            facts.append(("Token probabilities", call.tokens_note))
        if call is not None:
            facts.append(("Model time", f"{call.seconds:.2f} s (batched call)"))
        raw = call.raw_output.strip() if a.format_violations and call is not None else ""
        out.append(AnswerRow(
            evidence=a.evidence, title=f"{title}: {shown[:48]}{ell}{mark}",
            heading=f"Evidence {len(out) + 1}: {EVIDENCE_LABELS.get(a.evidence, a.evidence.value)}",
            answer=shown, think=" ".join(a.think.split()) if a.think else "",
            mean_prob_text=("" if a.mean_answer_prob is None
                            else f"Mean answer-token probability {a.mean_answer_prob:.3f}"),
            format_text="; ".join(a.format_violations), facts=tuple(facts),
            think_report=a.think.strip() or "(the model wrote no reasoning)", raw_output=raw, winner=win,
        ))
    return tuple(out)


def _vote(r: RunRecord) -> VoteSummary | None:
    v = r.vote
    if v is None:
        return None
    rows = []
    for x in v.votes:
        counted = x.same_input_as is None
        win = counted and bool(v.winner) and x.normalized == v.winner
        shown = repr(elide(x.raw_answer, 60, trim=False)) if x.raw_answer else "(no answer)"
        same = "" if counted else (("fell back: " if x.fell_back else "")
                                   + f"same input as {EVIDENCE_LABELS.get(x.same_input_as, str(x.same_input_as))}")
        rows.append(VoteRow(
            evidence=x.evidence, evidence_label=EVIDENCE_LABELS.get(x.evidence, x.evidence.value),
            raw_answer=x.raw_answer,
            cell=(f"({same}, not counted again)" if same else elide(x.raw_answer or "(none)", 60)
                  + ("  \u2714" if win else "")),
            tip=" ".join(x.raw_answer.split()), normalized=x.normalized, prob3=fmt_prob3(x.mean_prob),
            prob2=fmt_prob(x.mean_prob),
            terminal=(f"  {x.evidence.value:<6}  {shown:<40}  p={fmt_prob3(x.mean_prob)}"
                      + (f"  ({same}; not counted again)" if same else "")), winner=win,
            counted=counted, counted_text=f"no: {same}" if same else "yes" if win else "no",
        ))
    counts = ", ".join(f"“{k}”: {n}" for k, n in sorted(v.counts.items(), key=lambda kv: -kv[1])) or "none"
    line = sentence(f"Counts: {counts}") + " " + sentence(f"Winner: {v.winner or '(none)'}")
    if v.tied:
        line += " " + sentence(f"Tied: {', '.join(v.tied)}; " + TIE_RULES.get(v.tie_break, f"broken by {v.tie_break}"))
    counts_text = line
    if v.detail:
        line += " " + sentence(v.detail)
    n = v.counts.get(v.winner, 0) if v.winner else 0
    rule = ""
    if v.tie_break and v.tie_break != TieBreak.NONE:
        rule = TIE_RULES.get(v.tie_break, str(v.tie_break))
    passes = v.independent_passes
    count = f" ({n} of {passes} independent passes)" if passes > 1 else " (1 independent pass)" if passes else \
        f" ({n} of {len(v.votes)} votes)"
    return VoteSummary(
        rows=tuple(rows), winner_text=elide(v.winner_raw, 300) or "(none)",
        winner_count=count if v.winner else "", tie_rule=rule, detail=v.detail,
        detail_short=elide(v.detail, 400), counts_line=line, passes_text=vote_agreement(v), counts_text=counts_text,
    )


def build_presentation(record: RunRecord, overrides: Sequence[Override] = ()) -> RunPresentation:
    """The presentation of ``record``; ``overrides``: the audit store's, after the record's own."""
    r = record
    inp, win = r.input, r.input.window
    total = sum(t.seconds for t in r.timings)
    models = tuple(ModelRow(
        role=role, backend=m.backend, repo_id=m.repo_id, revision_short=short_hash(m.revision) or "local",
        revision=(m.revision or "-")[:12], sha_short=short_hash(m.weights_sha256), device=m.device, dtype=m.dtype,
        sha256=m.weights_sha256,
    ) for role, m in r.models.items())
    timings = tuple(TimingRow(
        stage=t.stage.value if isinstance(t.stage, Stage) else str(t.stage), started=fmt_time(t.started),
        seconds=f"{t.seconds:.2f}", model_seconds=f"{t.model_seconds:.2f}",
        overhead=f"{max(t.seconds - t.model_seconds, 0.0):.2f}",
    ) for t in r.timings)
    timings_text = ""
    if r.timings:
        parts = " \u00b7 ".join(f"{x.stage.value} {x.seconds:.2f} s" for x in r.timings)
        timings_text = (f"{parts} (total {total:.2f} s, of which models "
                        f"{sum(x.model_seconds for x in r.timings):.2f} s)")
    window = (f"{win.get('name') or 'window'} (C {float(win.get('center', 0)):g}, W {float(win.get('width', 0)):g})"
              if win else "-")
    weights_text = f"Profile {r.profile or '-'} weights: {r.weights_disclosure or NOT_RECORDED}"
    head = (
        f"run {r.run_id}: {r.status} in {total:.1f} s (profile {r.profile}, {r.mode})",
        weights_text,
        f"slice {inp.slice_index + 1}/{inp.num_slices} of {inp.modality} series {inp.series_uid or '(no UID)'} "
        f"(window {win.get('name') or ''} C{win.get('center', 0):g} W{win.get('width', 0):g})",
        f"question: {r.question}",
    )
    return RunPresentation(
        header=_header(r), disclaimer=DISCLAIMER,
        input_text=(f"{inp.modality} slice {inp.slice_index + 1}/{inp.num_slices}, "
                    f"{inp.image_size[0]}\u00d7{inp.image_size[1]} px, window "
                    f"C {win.get('center', 0):g} / W {win.get('width', 0):g}, pixels sha256 {short_hash(inp.pixel_sha256) or '-'}"),
        window_text=window, entities=_entities(r), masks=tuple(mask_row(i, m) for i, m in enumerate(r.masks)),
        mask_note=mask_note(r),
        evidence=_evidence(r), answers=_answers(r), vote=_vote(r), coordinator=coordinator(r), models=models,
        versions_text=f"app {r.app_version}, prompts {r.prompt_version}, record schema {r.schema_version}",
        timings=timings, timings_text=timings_text, total_seconds=total, warnings=tuple(r.warnings),
        errors=tuple(r.errors), overrides=override_rows(list(r.overrides) + list(overrides)), terminal_head=head,
        weights_text=weights_text, study=study_view(r.study, r.input) if r.study is not None else None,
        pixel_sha256=inp.pixel_sha256,
    )


def mask_note(r: RunRecord) -> str:
    """What the confidences mean and which one each segmenter's tau was compared with."""
    # Each mask carries the tau it was judged by (a segmenter's own, from its profile); the record's
    # run-level tau is only the default and says nothing true about a run without masks.
    gates = sorted({f"{m.backend}: C_{m.confidence_gate.value} vs \u03c4 {m.tau:.2f}" if m.confidence_roi is not None
                    else f"{m.backend}: C vs \u03c4 {m.tau:.2f}" for m in r.masks})
    which = (f" Gate per segmenter: {'; '.join(gates)}." if gates
             else " No mask was made, so none was compared with a threshold (each segmenter's \u03c4 is in its"
                  " profile).")
    return ("Confidence C = 1 \u2212 H/log 2 with H the mean binary entropy: C_roi over the mask's box + 10 %, "
            "C_paper over the whole map (docs/calibration.md)." + which
            + " Rejected masks are not used as evidence (greyed, hidden on the image unless ticked).")


def tau_text(r: RunRecord) -> str:
    """The thresholds the masks were judged by (per segmenter), else the run's tau."""
    taus = sorted({f"{m.backend} {m.tau:.2f} on C_{m.confidence_gate.value}" for m in r.masks})
    return ", ".join(taus) if taus else f"{r.tau:.2f}"
