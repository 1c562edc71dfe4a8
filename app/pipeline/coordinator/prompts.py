"""Coordinator prompt texts. Runs record ``COORD_PROMPT_VERSION`` in every plan/review event:
bump it whenever a text below changes.

Only what the radiologist asked and what the pipeline derived goes in: the question, entity
names, mask statistics (confidence, area, normalised box) and the experts' reasoning. No
DICOM header field (patient name, IDs, dates) is ever part of a coordinator prompt. Every text
from outside (question, entity names, the experts' answers and reasoning) goes in through
``prompt_safety.literal``: a template token in it stays text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from app.pipeline.prompt_safety import literal
from app.pipeline.record import Answer, MaskRecord
from app.pipeline.types import EvidenceType

COORD_PROMPT_VERSION = "care-coord-2"  # 2: the crop is around one accepted mask
MAX_COT_CHARS = 1500  # per candidate: a runaway chain of thought must not blow up the prompt

SYSTEM_PROMPT = (
    "You are the coordinator of CARE, an evidence-grounded radiology question-answering system. "
    "Expert models propose the anatomical structures or lesions relevant to a question, segment them, "
    "and answer the question from visual evidence, reasoning step by step. You plan which evidence the "
    "answering expert should use, and you review the experts' reasoning against their answers. You are "
    "strict: an answer whose reasoning does not support it, or that does not address the question, must "
    "not be accepted. You reply with a single JSON object and nothing else."
)

EVIDENCE_GUIDE = (
    "Evidence types the answering expert can use (one per answer; several may be run):\n"
    "- crop: a zoom-in crop around one accepted mask, at higher magnification; best for texture, "
    "density and morphology of a small region.\n"
    "- mask: the accepted masks as a separate binary image aligned with the slice; best for location, "
    "extent, laterality and shape.\n"
    "- global: the whole slice only; best for modality, orientation, and findings spread over the image. "
    "crop and mask fall back to global when no mask is accepted."
)


@dataclass
class Candidate:
    """One expert answer as the review sees it; ``id`` is "A<n>" for RunRecord.answers[n-1]."""

    id: str
    index: int  # into RunRecord.answers
    round: int
    answer: Answer
    entities: Sequence[str] = ()
    uncertainty: float | None = None


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, separators=(",", ":"))


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v else "0"


def mask_lines(masks: Sequence[MaskRecord], image_size: tuple[int, int]) -> list[str]:
    """One line per mask: name, confidence, verdict, area share, box normalised to 0..1."""
    w, h = image_size
    total = max(1, w * h)
    lines = []
    for m in masks:
        verdict = ("accepted" if m.accepted else f"rejected (below tau={m.tau:.2f})" if m.confidence < m.tau
                   else f"rejected ({m.object_score_kind or 'object score'} below {m.min_object_score:.2f})")
        box = "no pixels"
        if m.bbox is not None:
            x0, y0, x1, y1 = m.bbox
            box = f"bbox [{_fmt(x0 / w)}, {_fmt(y0 / h)}, {_fmt(x1 / w)}, {_fmt(y1 / h)}]"
        lines.append(f'- "{literal(m.entity)}" ({m.prompt_type} prompt): confidence {m.confidence:.2f}, {verdict}, '
                     f"area {100.0 * m.area_px / total:.2f}% of the image, {box}")
    return lines


def context_block(question: str, modality: str, image_size: tuple[int, int], entities: Sequence[str],
                  masks: Sequence[MaskRecord], with_image: bool) -> str:
    w, h = image_size
    lines = []
    if with_image:
        lines.append("Image-1 is the medical image (the slice the radiologist is looking at).")
    else:
        lines.append("You do not see the image; rely on the entity list, the mask statistics and the experts' reasoning.")
    lines.append(f"Image: {modality or 'unknown modality'}, {w}x{h} pixels.")
    lines.append(f"Question: {literal(question.strip())}")
    lines.append("Proposed entities: " + (", ".join(f'"{literal(e)}"' for e in entities) if entities else "(none)"))
    if masks:
        lines.append("Segmentation masks (confidence C = 1 - H/log 2; boxes as x0, y0, x1, y1 in 0..1 of the "
                     "image width and height):")
        lines.extend(mask_lines(masks, image_size))
    else:
        lines.append("Segmentation masks: none.")
    return "\n".join(lines)


def plan_prompt(context: str, schema: dict[str, Any]) -> str:
    return (
        f"{context}\n\n{EVIDENCE_GUIDE}\n\n"
        "Task: choose which evidence types the answering expert should run for this question (one or more) "
        "and give a short rationale (one or two sentences) that refers to the question and the masks.\n"
        f"Reply with only a JSON object matching this JSON schema: {schema_text(schema)}"
    )


def _cot(text: str) -> str:
    text = literal(" ".join((text or "").split()))
    if len(text) > MAX_COT_CHARS:
        text = text[: MAX_COT_CHARS - 1] + "\u2026"
    return text or "(no reasoning given)"


def candidate_lines(candidates: Sequence[Candidate]) -> list[str]:
    lines = []
    for c in candidates:
        a = c.answer
        ev = EvidenceType(a.evidence).value
        ents = f"; entities: {literal(', '.join(c.entities))}" if c.entities and ev != "global" else ""
        conf = f"; answer-token probability {a.mean_answer_prob:.2f}" if a.mean_answer_prob is not None else ""
        shown = f'"{literal(a.answer)}"' if a.answer else "(no usable answer)"
        issues = f"; format problems: {', '.join(a.format_violations)}" if a.format_violations else ""
        lines.append(f"[{c.id}] round {c.round}, {ev} evidence{ents}{conf}{issues}")
        lines.append(f"     answer: {shown}")
        lines.append(f"     reasoning: {_cot(a.think)}")
    return lines


def review_prompt(
    context: str,
    candidates: Sequence[Candidate],
    vote_answer: str,
    vote_detail: str,
    rounds_left: int,
    schema: dict[str, Any],
) -> str:
    vote = f'"{literal(vote_answer)}" ({literal(vote_detail)})' if vote_answer else "none (no expert gave a usable answer)"
    actions = [
        '- "accept": keep the majority-vote answer; "candidate" is a candidate that gave it.',
        '- "choose": another candidate\'s answer is better supported; "candidate" is that candidate.',
        '- "revise": write a corrected "final_answer" that rests on the reasoning of the candidates in "rests_on" '
        '("candidate" is the main one).',
    ]
    if rounds_left > 0:
        actions.append(
            f'- "another_round": the evidence is insufficient; name "next_evidence" (types) and/or "next_entities" '
            f"(structures to segment and look at) for one more expert round ({rounds_left} left)."
        )
    return (
        f"{context}\n\n"
        "Candidate answers from the evidence-grounded answering expert, each with its chain of thought:\n"
        + "\n".join(candidate_lines(candidates))
        + f"\n\nThe experts' majority vote is {vote}.\n\n"
        "Task: for every candidate, judge whether its reasoning supports its answer (cot_supports_answer) and "
        "whether the answer addresses the question (addresses_question), with a short note. Then decide:\n"
        + "\n".join(actions)
        + '\n"rests_on" lists the ids of the candidates your final answer rests on (at least one). Keep '
        '"final_answer" as short as the experts\' answers (a word or short phrase; yes or no for a yes/no '
        'question). Leave "next_evidence" and "next_entities" empty unless you ask for another round.\n'
        f"Reply with only a JSON object matching this JSON schema: {schema_text(schema)}"
    )
