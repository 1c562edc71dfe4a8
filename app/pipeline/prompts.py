"""Prompt texts of the CARE stages. Every run records ``PROMPT_VERSION``: bump it whenever a
text below changes, so answers from different prompt wordings are never silently compared.

Images come first in the chat turn (the backend places them; each after an "Image-N: " label as
InternVL was trained), so "Image-1" is the slice the radiologist is looking at and "Image-2", when
present, is the evidence image (for global evidence in the paper's form, an all-ones mask). A VQA
turn is Image-1, then its ``lead`` (the question), then Image-2 and the evidence text: the three
CARE-Flow passes share everything before Image-2, so the backend prefills it once (and a serving
engine's prefix cache can reuse it). The question and entity names go in through
``prompt_safety.literal``: they are text, never template tokens.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from app.pipeline.prompt_safety import literal
from app.pipeline.types import EvidenceType, VLMRequest

if TYPE_CHECKING:
    from app.pipeline.record import EvidenceItem

# 2: the all-ones global mask sentence; crop names its one entity. 3: the question before the
# evidence image (Image-1, question, Image-2, evidence text), the shared prefix of the passes.
PROMPT_VERSION = "care-prompts-3"

SYSTEM_PROMPT = (
    "You are a careful radiology assistant. You look at medical images and answer questions about "
    "them. You reason step by step before answering and never invent findings you cannot see."
)

FORMAT_INSTRUCTION = (
    "First think step by step inside <think> </think> tags, then give the final answer inside "
    "<answer> </answer> tags, e.g. <think>...</think><answer>...</answer>."
)


def _entity_list(entities: Sequence[str]) -> str:
    names = [literal(e.strip()) for e in entities if e and e.strip()]
    if not names:
        return "the relevant structures"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def entity_prompt(question: str, with_boxes: bool = True) -> str:
    """Stage 1: ask for the 1-5 structures or lesions needed to answer ``question``."""
    grounding = (
        " Write each one as <ref>name</ref><box>[[x1, y1, x2, y2]]</box>, with the box around it in "
        "coordinates normalised to 0-1000 of the image width and height; omit the box if you cannot "
        "locate it."
        if with_boxes
        else ""
    )
    return (
        f"{MEDICAL_IMAGE_OPENING} A radiologist asks the question below about it.\n"
        f"Question: {literal(question.strip())}\n"
        "Do not answer the question. Instead, list the 1 to 5 anatomical structures or lesions in "
        "Image-1 that must be examined to answer it, most important first, separated by commas, using "
        "short anatomical names (e.g. left lung, liver, lung nodule)." + grounding + "\n" + FORMAT_INSTRUCTION
    )


# The fixed openings of the texts below: what ``evidence_named`` reads a turn's evidence from.
MEDICAL_IMAGE_OPENING = "Image-1 is a medical image."
_CROP_OPENING = "Image-2 is a zoom-in crop of the region of Image-1 containing "
_MASK_OPENING = "Image-2 is a binary mask of "
ANSWER_INSTRUCTION = (
    "Answer the question concisely: a single word or short phrase (yes or no for a yes/no question). "
    + FORMAT_INSTRUCTION
)

ONES_MASK_SENTENCE = (
    "Image-2 is an all-white mask covering the whole of Image-1: no region is singled out, "
    "so consider the image as a whole."
)


def _evidence_sentence(evidence: EvidenceType, entities: Sequence[str], ones_mask: bool = False) -> str:
    what = _entity_list(entities)
    if evidence is EvidenceType.GLOBAL and ones_mask:
        return ONES_MASK_SENTENCE
    if evidence is EvidenceType.CROP:
        return (
            f"{_CROP_OPENING}{what}, "
            "taken from the same image at higher magnification."
        )
    if evidence is EvidenceType.MASK:
        return (
            f"{_MASK_OPENING}{what} on Image-1: white pixels belong to the structure, "
            "black pixels are background, and it is aligned pixel for pixel with Image-1."
        )
    return ""


def vqa_lead(question: str) -> str:
    """Stage 3, the part every evidence pass shares (right after Image-1): the question."""
    return f"{MEDICAL_IMAGE_OPENING}\nQuestion: {literal(question.strip())}\n"


def vqa_prompt(evidence: EvidenceType | str, entities: Sequence[str] = (), ones_mask: bool = False) -> str:
    """Stage 3, the text after the evidence image for one evidence type (crop / mask / global;
    ``ones_mask``: global evidence carries the paper's all-ones mask as Image-2)."""
    evidence = EvidenceType(evidence)
    lines = []
    sentence = _evidence_sentence(evidence, entities, ones_mask)
    if sentence:
        lines.append(sentence + " Use it as evidence, but answer about Image-1.")
    elif entities:
        lines.append(f"Pay attention to {_entity_list(entities)}.")
    lines.append(ANSWER_INSTRUCTION)
    return "\n".join(lines)


def evidence_named(turn_text: str) -> EvidenceType | None:
    """The evidence type a stage-3 chat turn was built for, from its last text part; None for
    any other text (the entity prompt, a hand-written one).

    Exact, not a keyword guess: that part is ``vqa_prompt``'s whole text (after Image-2), or
    ``vqa_lead`` + ``vqa_prompt(GLOBAL)`` (a one-image global turn, whose one text part follows
    Image-1), so its opening is one of the fixed openings above. The question sits in the lead
    (its own part before Image-2, or after the fixed opening) and entity names inside the
    sentence: neither is where the opening is read, whatever words they contain.
    """
    if not turn_text.endswith(ANSWER_INSTRUCTION):
        return None
    if turn_text.startswith(_CROP_OPENING):
        return EvidenceType.CROP
    if turn_text.startswith(_MASK_OPENING):
        return EvidenceType.MASK
    if turn_text.startswith(ONES_MASK_SENTENCE) or turn_text.startswith(MEDICAL_IMAGE_OPENING + "\nQuestion: "):
        return EvidenceType.GLOBAL
    return None


def evidence_image_count(evidence: EvidenceType | str, ones_mask: bool = False) -> int:
    """How many images a VQA request of this evidence type carries (Image-1 plus evidence)."""
    return 1 if EvidenceType(evidence) is EvidenceType.GLOBAL and not ones_mask else 2


# --------------------------------------------------------------------------- requests
def entity_request(question: str, image: np.ndarray) -> VLMRequest:
    """The stage-1 chat turn: the windowed slice and the entity prompt."""
    return VLMRequest(images=[image], prompt=entity_prompt(question), system=SYSTEM_PROMPT)


def evidence_request(question: str, evidence: EvidenceType | str, images: Sequence[np.ndarray],
                     entities: Sequence[str] = (), ones_mask: bool = False) -> VLMRequest:
    """The EG-VQA chat turn: Image-1 (the slice), the question, the evidence image, its text."""
    return VLMRequest(images=list(images), prompt=vqa_prompt(evidence, entities, ones_mask),
                      system=SYSTEM_PROMPT, lead=vqa_lead(question))


def vqa_request(question: str, item: "EvidenceItem") -> VLMRequest:
    """The EG-VQA chat turn for one evidence item (its images in model input order)."""
    # A fallen-back item carries only the slice: it must be asked as global evidence.
    kind = EvidenceType.GLOBAL if item.fallback else item.type
    return evidence_request(question, kind, item.images, item.entities, item.ones_mask)
