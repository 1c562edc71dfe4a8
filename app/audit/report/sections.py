"""The report's sections, top to bottom: each lays out the run's presentation (all wording
comes from :mod:`app.audit.present`) and the record's images."""
from __future__ import annotations

from typing import Any

from app.pipeline.types import EvidenceType
from app.study.volume import PatientInfo

from ..artifacts import encode_png
from ..present import DEIDENTIFIED, fmt_dicom_date, fmt_person_name
from ..present.build import tau_text
from ..present.formatting import sentence
from .composite import mask_colour
from .flowables import Ctx, anchored, clip, fitted, image, para, rgb, table
from .keep import lead, with_tail

FACT_CHARS = 400  # a value in an evidence pass's fact table
VOTE_CHARS = 160  # an answer in the vote table


def title(ctx: Ctx) -> list[Any]:
    h = ctx.pres.header
    return [para(ctx, h.title, "title"), para(ctx, h.subtitle, "subtitle")]


def study(ctx: Ctx, patient: PatientInfo | None) -> list[Any]:
    from reportlab.lib import colors

    inp = ctx.record.input

    def ident(value: str, formatter: Any = str) -> str:
        if ctx.deidentify:
            return DEIDENTIFIED
        if patient is None:
            return "not recorded"
        return formatter(value) if value else "-"

    uid = (lambda v: DEIDENTIFIED if ctx.deidentify else (v or "-"))
    rows = [
        ["Patient name", ident(patient.name if patient else "", fmt_person_name),
         "Patient ID", ident(patient.patient_id if patient else "")],
        ["Birth date", ident(patient.birth_date if patient else "", fmt_dicom_date),
         "Sex", ident(patient.sex if patient else "")],
        ["Study date", ident(patient.study_date if patient else "", fmt_dicom_date),
         "Accession", ident(patient.accession if patient else "")],
        ["Institution", ident(patient.institution if patient else ""),
         "Modality", inp.modality or "-"],
        ["Study UID", uid(inp.study_uid), "", ""],
        ["Series UID", uid(inp.series_uid), "", ""],
        ["Slice", f"{inp.slice_index + 1} of {inp.num_slices} (index {inp.slice_index}), "
                  f"{inp.image_size[0]}×{inp.image_size[1]} px", "Window", ctx.pres.window_text],
    ]
    fw = ctx.frame_width
    widths = [0.15 * fw, 0.37 * fw, 0.13 * fw, 0.35 * fw]

    def value(label: str, text: str, width: float) -> Any:  # page 1: at most 4 lines a value
        return fitted(ctx, text, "cell", width - 6, 4 * ctx.styles["cell"].leading, f"{label} in full (cut on page 1)")

    cells = [[para(ctx, a, "label"), value(a, b, widths[1] if c else fw - widths[0]), para(ctx, c, "label"),
              value(c, d, widths[3])] for a, b, c, d in rows]
    extra = [("SPAN", (1, 4), (3, 4)), ("SPAN", (1, 5), (3, 5)),
             ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#F3F5F8")),
             ("BACKGROUND", (2, 0), (2, 3), colors.HexColor("#F3F5F8")),
             ("BACKGROUND", (2, 6), (2, 6), colors.HexColor("#F3F5F8"))]
    return [table(ctx, cells, widths, header=False, extra=extra)]


def question_and_answer(ctx: Ctx) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.platypus import Spacer, Table, TableStyle

    r, h, st = ctx.record, ctx.pres.header, ctx.styles
    fw, inner_w = ctx.frame_width, ctx.frame_width - 16
    # Page 1 holds the question and the answer whatever their length: each is cut to a few
    # lines there and continued in full after the figure.
    question = fitted(ctx, ctx.scrub.typed(r.question), "question", fw, 6 * st["question"].leading,
                      "Question in full (cut on page 1)")
    out = [Spacer(1, 6), para(ctx, "Question", "label"), question, Spacer(1, 6)]
    answer = fitted(ctx, h.answer_or_status, "answer", inner_w, 8 * st["answer"].leading,
                    "Final answer in full (cut on page 1)")
    inner = [[para(ctx, f"Final answer ({h.answer_how})", "label")], [answer]]
    if h.status_reason:
        inner.append([para(ctx, f"{h.status_label}: {h.status_reason}", "cellb")])
    if h.scope:
        inner.append([para(ctx, f"Scope: {h.scope}", "small")])
    if h.agreement:
        inner.append([para(ctx, h.agreement, "small")])
    for o in ctx.pres.overrides:
        if o.final_answer:
            text = (f"Clinician override ({o.time}{', ' + o.who if o.who else ''}): "
                    f"{ctx.scrub.typed(o.new)}" + (f" ({ctx.scrub.typed(o.note)})" if o.note else ""))
            inner.append([fitted(ctx, text, "cellb", inner_w, 4 * st["cellb"].leading,
                                 "Clinician override in full (cut on page 1)")])
    box = Table(inner, colWidths=[fw])
    box.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(
            "#FDF3DC" if h.severity == "warn" and r.final_answer else "#EAF4EA" if r.final_answer else "#FBEAEA")),
        ("BOX", (0, 0), (-1, -1), 1.2, colors.HexColor(
            "#B07A10" if h.severity == "warn" and r.final_answer else "#3C7A3C" if r.final_answer else "#A33")),
        ("LEFTPADDING", (0, 0), (-1, -1), 8), ("RIGHTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]))
    return out + [box]


def continued(ctx: Ctx) -> list[Any]:
    """The full text of whatever page 1 had to cut (question, answer, long header values)."""
    if not ctx.continuations:
        return []
    out: list[Any] = [para(ctx, "Text continued from page 1", "h2")]
    for c in ctx.continuations:
        out.append(anchored(ctx, c.key, para(ctx, c.heading, "h3")))
        out.append(para(ctx, c.text, "question" if c.style in ("question", "answer") else "body"))
    return out


def entities(ctx: Ctx) -> list[Any]:
    out: list[Any] = [para(ctx, "Entities and masks", "h2")]
    fw = ctx.frame_width
    if ctx.pres.masks:
        rows: list[list[Any]] = [["", "Entity", "Backend (prompt)", "Confidence", "Decision vs tau",
                                  "Area (px)", "Mask box x0, y0, x1, y1"]]
        extra = []
        for i, m in enumerate(ctx.pres.masks):
            rows.append(["", m.entity, f"{m.backend} ({m.prompt_type})", m.confidence_text, m.decision,
                         m.area_text, m.bbox_text])
            extra.append(("BACKGROUND", (0, i + 1), (0, i + 1), rgb(mask_colour(m.colour_index))))
        t = table(ctx, rows, [10, 0.24 * fw, 0.17 * fw, 0.13 * fw, 0.17 * fw, 0.10 * fw, 0.19 * fw - 10], extra=extra)
        # The notes (proposed, merged, kept) read with the table: on the page of its last rows.
        return out + [with_tail(t, [para(ctx, n, "small") for n in ctx.pres.entities.notes])]
    out.append(para(ctx, "No masks were produced.", "body"))
    out.extend(para(ctx, n, "small") for n in ctx.pres.entities.notes)
    return out


def evidence_and_answers(ctx: Ctx) -> list[Any]:
    from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

    r = ctx.record
    heading = para(ctx, "Evidence-grounded answers", "h2")
    if not ctx.pres.answers:
        return [heading, para(ctx, "No evidence pass produced an answer.", "body")]
    out: list[Any] = []
    fw = ctx.frame_width
    for a in ctx.pres.answers:
        item = next((e for e in r.evidence if e.type == a.evidence), None)
        # The block is kept together beside its thumbnail, so its cells are bounded; a value cut
        # here is given in full right below it.
        rows = [[para(ctx, k, "cellb"), para(ctx, clip(v, FACT_CHARS), "cell")] for k, v in a.facts]
        long_facts = [(k, v) for k, v in a.facts if len(v) > FACT_CHARS]
        if item is not None and len(item.images) > 1 and not item.fallback:
            tw = 0.8 * fw
            facts = table(ctx, rows, [0.26 * tw, 0.74 * tw], header=False)
            thumb = [image(encode_png(item.images[1]), 0.2 * fw - 6, max_height=0.2 * fw),
                     para(ctx, "second image input to the VQA model", "caption")]
            block = Table([[facts, thumb]], colWidths=[tw, 0.2 * fw], hAlign="LEFT")
            block.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                       ("LEFTPADDING", (1, 0), (1, 0), 6)]))
        else:
            block = table(ctx, rows, [0.22 * fw, 0.78 * fw], header=False)
        # The section heading rides in the first block: keepWithNext alone left it alone at a page foot.
        out.append(KeepTogether(([] if out else [heading]) + [para(ctx, a.heading, "h3"), block]))
        out.append(Spacer(1, 3))
        for k, v in long_facts:
            out.append(para(ctx, f"{k} (full text)", "label"))
            out.append(para(ctx, v, "think"))
        out.append(para(ctx, "Reasoning (<think>)", "label"))
        out.append(para(ctx, a.think_report, "think"))
        if a.raw_output:
            out.append(para(ctx, "Raw model output (the answer did not follow the required format)", "label"))
            out.append(para(ctx, a.raw_output, "think"))
    return out


def vote(ctx: Ctx) -> list[Any]:
    out: list[Any] = [para(ctx, "Vote", "h2")]
    v = ctx.pres.vote
    if v is None:
        return out + [para(ctx, "No vote was taken (the run ended before aggregation).", "body")]
    fw = ctx.frame_width
    # One compact row per pass; each pass's answer is given in full under "Evidence-grounded answers".
    rows: list[list[Any]] = [["Evidence", "Answer (as counted)", "Mean p", "Counted for winner"]]
    for x in v.rows:
        answer = clip(x.raw_answer or "(no answer)", VOTE_CHARS)
        if x.normalized and x.normalized != (x.raw_answer or "").strip().lower():
            answer += f" → “{clip(x.normalized, VOTE_CHARS // 2)}”"
        rows.append([x.evidence_label, answer, x.prob2, x.counted_text or ("yes" if x.winner else "no")])
    # Counts are keyed by whole answers (long model output): clipped; the detail (tie rule,
    # independent passes) is what the vote rested on, so it is given in full. Both stay on the
    # page of the table's last rows.
    notes = [para(ctx, clip(v.counts_text or v.counts_line, 700), "small")]
    if v.counts_text and v.detail:
        notes.append(para(ctx, clip(sentence(v.detail), 1500), "small"))
    return out + [with_tail(table(ctx, rows, [0.16 * fw, 0.58 * fw, 0.10 * fw, 0.16 * fw]), notes)]


def coordinator(ctx: Ctx) -> list[Any]:
    c = ctx.pres.coordinator
    out: list[Any] = [para(ctx, "Coordinator timeline", "h2")]
    if not c.rows:
        return out + [para(ctx, c.empty_text, "body")]
    fw = ctx.frame_width
    # The lines above the table introduce it: kept on the page where it starts.
    if c.options_text:
        out.append(lead(para(ctx, c.options_text, "small")))
    if c.finding:
        out.append(lead(para(ctx, f"Review finding: {c.finding}", "small")))
    rows: list[list[Any]] = [["Time", "Step", "Detail"]]
    rows += [[e.time, e.kind, e.detail_json] for e in c.rows]
    return out + [table(ctx, rows, [0.22 * fw, 0.14 * fw, 0.64 * fw])]


def overrides(ctx: Ctx) -> list[Any]:
    out: list[Any] = [para(ctx, "Clinician overrides", "h2")]
    if not ctx.pres.overrides:
        return out + [para(ctx, "None.", "body")]
    fw = ctx.frame_width
    # The same plain-words sentence the audit panel shows, with the stored note for the record.
    rows: list[list[Any]] = [["Time", "By", "What was done", "Note"]]
    for o in ctx.pres.overrides:
        rows.append([o.time, o.who or "-", ctx.scrub.typed(o.sentence), ctx.scrub.typed(o.note) if o.note else "-"])
    return out + [table(ctx, rows, [0.18 * fw, 0.12 * fw, 0.44 * fw, 0.26 * fw])]


def models(ctx: Ctx) -> list[Any]:
    weights = para(ctx, ctx.pres.weights_text, "body")
    out: list[Any] = [para(ctx, "Models", "h2"), weights]
    if not ctx.pres.models:
        return out + [para(ctx, "No model was loaded in this run.", "body")]
    lead(weights)  # it introduces the table
    fw = ctx.frame_width
    rows: list[list[Any]] = [["Role", "Backend", "Repository", "Revision", "Weights sha256", "Device / dtype"]]
    for m in ctx.pres.models:
        rows.append([m.role, m.backend, m.repo_id or "-", m.revision,
                     m.sha_short or "-", f"{m.device} / {m.dtype}"])
    return out + [table(ctx, rows, [0.14 * fw, 0.12 * fw, 0.30 * fw, 0.12 * fw, 0.16 * fw, 0.16 * fw])]


def timings(ctx: Ctx) -> list[Any]:
    p = ctx.pres
    fw = ctx.frame_width
    out: list[Any] = [para(ctx, "Run time", "h2"),
                      para(ctx, f"Asked {p.header.created}; finished {p.header.finished}; "
                                f"{p.total_seconds:.2f} s in the pipeline stages.", "body")]
    if p.timings:
        lead(out[-1])  # it introduces the table
        rows: list[list[Any]] = [["Stage", "Started", "Wall (s)", "In models (s)", "Overhead (s)"]]
        rows += [[t.stage, t.started, t.seconds, t.model_seconds, t.overhead] for t in p.timings]
        out.append(table(ctx, rows, [0.18 * fw, 0.34 * fw, 0.16 * fw, 0.16 * fw, 0.16 * fw]))
    return out


def warnings(ctx: Ctx) -> list[Any]:
    p = ctx.pres
    out: list[Any] = [para(ctx, "Warnings and errors", "h2")]
    if not p.warnings and not p.errors:
        return out + [para(ctx, "None.", "body")]
    out.extend(para(ctx, f"Error: {e}", "small") for e in p.errors)
    out.extend(para(ctx, f"Warning: {w}", "small") for w in p.warnings)
    return out


def provenance(ctx: Ctx) -> list[Any]:
    r, inp = ctx.record, ctx.record.input
    fw = ctx.frame_width
    source = "removed (de-identified)" if ctx.deidentify else (inp.source_path or "-")
    rows = [
        ["Run id", r.run_id],
        ["App / record schema / prompts", f"{r.app_version or '-'} / {r.schema_version} / {r.prompt_version or '-'}"],
        ["Mask threshold tau", tau_text(r)],
        ["Slice pixels sha256", f"{inp.pixel_sha256 or '-'} ({inp.pixel_dtype or '?'})"],
        ["Source file", source],
    ]
    cells = [[para(ctx, k, "label"), para(ctx, v, "mono" if k != "Source file" else "cell")] for k, v in rows]
    return [para(ctx, "Provenance", "h2"), table(ctx, cells, [0.25 * fw, 0.75 * fw], header=False)]
