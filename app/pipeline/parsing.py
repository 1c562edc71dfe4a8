"""Reading model outputs: ``<think>/<answer>`` blocks, entity lists with InternVL grounding boxes,
answer normalisation for voting, and the log-probabilities of an answer's tokens.

Models break the format in every possible way (missing or unclosed tags, tags repeated or nested,
prose around the tags, upper case). Nothing here raises on model text: each deviation is recorded
as a violation string for the run record, and a best-effort reading is returned.
"""
from __future__ import annotations

import json
import math
import re
import string
from dataclasses import dataclass, field
from typing import Sequence

from app.pipeline.record import Entity
from app.pipeline.types import Box, Generation
from app.pipeline.vocab import AnswerKind

MAX_ENTITIES = 5
MAX_ENTITY_NAME_CHARS = 80
GROUNDING_SCALE = 1000  # InternVL boxes are normalised to 0..1000 of the image width/height

_TAG = re.compile(r"<\s*(/?)\s*(think|answer)\s*>", re.IGNORECASE)


@dataclass
class ParsedAnswer:
    think: str
    answer: str
    format_ok: bool
    violations: list[str] = field(default_factory=list)
    # Character span of the answer content in the original text (for its token log-probs).
    answer_span: tuple[int, int] | None = None


@dataclass
class EntityProposal:
    name: str
    box: Box | None = None  # pixel box (x0, y0, x1, y1) of the image, x1/y1 exclusive


@dataclass
class ParsedEntities:
    entities: list[EntityProposal]
    think: str = ""
    violations: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- think / answer


@dataclass
class _Block:
    start: int  # content start
    end: int  # content end
    outer_start: int  # opening tag start
    outer_end: int  # closing tag end (or content end when unclosed)
    closed: bool
    nested: bool


def _blocks(text: str, name: str, stop_at: str | None = None) -> tuple[list[_Block], list[int]]:
    """Top-level ``<name>`` blocks and the positions of orphan closing tags.

    An unclosed block runs to the next ``<stop_at>`` opening tag (or the end of the text).
    """
    blocks: list[_Block] = []
    orphans: list[int] = []
    depth, start, outer_start, nested = 0, 0, 0, False
    for m in _TAG.finditer(text):
        tag = m.group(2).lower()
        closing = bool(m.group(1))
        if tag != name:
            if depth and stop_at and tag == stop_at and not closing:
                blocks.append(_Block(start, m.start(), outer_start, m.start(), False, nested))
                depth = 0
            continue
        if not closing:
            if depth == 0:
                start, outer_start, nested = m.end(), m.start(), False
            else:
                nested = True
            depth += 1
        elif depth > 1:
            depth -= 1
        elif depth == 1:
            blocks.append(_Block(start, m.start(), outer_start, m.end(), True, nested))
            depth = 0
        else:
            orphans.append(m.start())
    if depth:
        blocks.append(_Block(start, len(text), outer_start, len(text), False, nested))
    return blocks, orphans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _clean(content: str) -> str:
    return _TAG.sub("", content).strip()


def parse_think_answer(text: str) -> ParsedAnswer:
    """Split ``<think>..</think><answer>..</answer>`` output, tolerating every malformation."""
    text = text or ""
    violations: list[str] = []

    thinks, think_orphans = _blocks(text, "think", stop_at="answer")
    answers, answer_orphans = _blocks(text, "answer", stop_at="think")

    think = ""
    if thinks:
        think = "\n".join(_clean(text[b.start : b.end]) for b in thinks).strip()
        if len(thinks) > 1:
            violations.append(f"duplicated <think> ({len(thinks)} blocks)")
        if any(not b.closed for b in thinks):
            violations.append("unclosed <think>")
        if any(b.nested for b in thinks):
            violations.append("nested <think>")
    elif think_orphans:
        # "...reasoning</think><answer>": the opening tag was dropped (often it ended the prompt).
        end = think_orphans[0]
        think = _clean(text[:end])
        thinks = [_Block(0, end, 0, end + len("</think>"), True, False)]
        violations.append("missing <think> opening tag")
    else:
        violations.append("missing <think>")

    span: tuple[int, int] | None = None
    if answers:
        if len(answers) > 1:
            violations.append(f"duplicated <answer> ({len(answers)} blocks); used the last non-empty one")
        if any(b.nested for b in answers):
            violations.append("nested <answer>")
        chosen = next((b for b in reversed(answers) if _clean(text[b.start : b.end])), answers[-1])
        if not chosen.closed:
            violations.append("unclosed <answer>")
        answer = _clean(text[chosen.start : chosen.end])
        span = _strip_span(text, chosen.start, chosen.end)
    elif answer_orphans:
        after_think = max((b.outer_end for b in thinks), default=0)
        end = answer_orphans[-1]
        start = after_think if after_think <= end else 0
        answer = _clean(text[start:end])
        span = _strip_span(text, start, end)
        answers = [_Block(start, end, start, end + len("</answer>"), True, False)]
        violations.append("missing <answer> opening tag")
    else:
        # Fallback: whatever the model said outside its reasoning is its answer.
        regions = [r for r in _outside_regions(text, thinks) if text[r[0] : r[1]].strip()]
        answer = _clean(" ".join(text[a:b].strip() for a, b in regions))
        violations.append("missing <answer>")
        if regions:
            span = _strip_span(text, regions[0][0], regions[-1][1])
    if answers and _clean(_outside(text, thinks + answers)):
        violations.append("text outside <think>/<answer>")
    if (answers or answer_orphans) and not answer:
        violations.append("empty <answer>")
        span = None

    return ParsedAnswer(think=think, answer=answer, format_ok=not violations, violations=violations, answer_span=span)


def _outside_regions(text: str, blocks: Sequence[_Block]) -> list[tuple[int, int]]:
    regions, pos = [], 0
    for b in sorted(blocks, key=lambda b: b.outer_start):
        if b.outer_start > pos:
            regions.append((pos, b.outer_start))
        pos = max(pos, b.outer_end)
    regions.append((pos, len(text)))
    return regions


def _outside(text: str, blocks: Sequence[_Block]) -> str:
    return " ".join(text[a:b].strip() for a, b in _outside_regions(text, blocks) if text[a:b].strip())


# --------------------------------------------------------------------------- entities

_REF_BOX = re.compile(
    r"<ref>\s*(?P<name>.*?)\s*</ref>\s*(?:<box>\s*(?P<box>.*?)\s*</box>)?", re.IGNORECASE | re.DOTALL
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LIST_MARKER = re.compile(r"^\s*(?:[-*\u2022]+|\(?\d{1,2}[.):]|\(?[a-e][.)])\s*", re.IGNORECASE)


def _box_from_numbers(
    nums: list[float], image_size: tuple[int, int], name: str, violations: list[str]
) -> Box | None:
    """Four 0..1000 numbers -> pixel box of a (width, height) image, or None if unusable."""
    if len(nums) < 4:
        violations.append(f"box of {name!r} has {len(nums)} numbers, expected 4")
        return None
    x1, y1, x2, y2 = nums[:4]
    if any(v < 0 or v > GROUNDING_SCALE for v in (x1, y1, x2, y2)):
        violations.append(f"box of {name!r} outside 0..{GROUNDING_SCALE}; clamped")
    if x2 < x1 or y2 < y1:
        violations.append(f"box of {name!r} has reversed corners; reordered")
    x1, x2 = sorted(min(max(v, 0.0), GROUNDING_SCALE) for v in (x1, x2))
    y1, y2 = sorted(min(max(v, 0.0), GROUNDING_SCALE) for v in (y1, y2))
    width, height = image_size
    px0 = max(0, min(width, math.floor(x1 / GROUNDING_SCALE * width)))
    px1 = max(0, min(width, math.ceil(x2 / GROUNDING_SCALE * width)))
    py0 = max(0, min(height, math.floor(y1 / GROUNDING_SCALE * height)))
    py1 = max(0, min(height, math.ceil(y2 / GROUNDING_SCALE * height)))
    if px1 - px0 < 2 or py1 - py0 < 2:
        violations.append(f"box of {name!r} is degenerate; dropped")
        return None
    return (px0, py0, px1, py1)


def _parse_box_text(raw: str, image_size: tuple[int, int], name: str, violations: list[str]) -> Box | None:
    groups = re.findall(r"\[([^\[\]]*)\]", raw) or [raw]
    if len(groups) > 1:
        violations.append(f"{name!r} has {len(groups)} boxes; kept the first")
    nums = [float(n) for n in _NUMBER.findall(groups[0])]
    return _box_from_numbers(nums, image_size, name, violations)


def _clean_name(raw: str) -> str:
    name = _TAG.sub("", raw)
    name = re.sub(r"</?(?:ref|box|quad)>", "", name, flags=re.IGNORECASE)
    name = _LIST_MARKER.sub("", name)
    name = re.sub(r"^(?:and|or)\s+", "", name.strip(), flags=re.IGNORECASE)
    name = re.sub(r"\s+(?:and|or)$", "", name, flags=re.IGNORECASE)
    name = name.strip().strip(string.punctuation.replace("(", "").replace(")", "") + " \t\"'`")
    return re.sub(r"\s+", " ", name)


def _from_json(answer: str, image_size: tuple[int, int], violations: list[str]) -> list[EntityProposal] | None:
    start, end = answer.find("["), answer.rfind("]")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(answer[start : end + 1])
    except ValueError:
        return None
    if not isinstance(data, list) or not data or all(isinstance(x, (int, float)) for x in data):
        return None
    out = []
    for item in data:
        if isinstance(item, str):
            out.append(EntityProposal(_clean_name(item)))
        elif isinstance(item, dict):
            name = _clean_name(str(item.get("name") or item.get("label") or item.get("entity") or ""))
            raw_box = item.get("box", item.get("bbox", item.get("bbox_2d")))
            box = None
            if isinstance(raw_box, list):
                flat = raw_box[0] if raw_box and isinstance(raw_box[0], list) else raw_box
                nums = [float(v) for v in flat if isinstance(v, (int, float))]
                box = _box_from_numbers(nums, image_size, name, violations)
            out.append(EntityProposal(name, box))
    return out


def parse_entities(text: str, image_size: tuple[int, int]) -> ParsedEntities:
    """Entities (1..5) from a stage-1 output; ``image_size`` is (width, height) in pixels.

    Accepts InternVL grounding (``<ref>name</ref><box>[[x1, y1, x2, y2]]</box>``, 0..1000
    coordinates), a JSON list (strings or {"name", "box"} objects), or a comma / newline /
    numbered / bulleted list.
    """
    parsed = parse_think_answer(text)
    violations = list(parsed.violations)
    answer = parsed.answer
    if "<ref>" not in answer.lower() and "<ref>" in (text or "").lower():
        answer = text  # grounding written outside the <answer> block: still use it

    proposals: list[EntityProposal]
    refs = list(_REF_BOX.finditer(answer))
    if refs:
        proposals = []
        for m in refs:
            name = _clean_name(m.group("name"))
            box = _parse_box_text(m.group("box"), image_size, name, violations) if m.group("box") else None
            proposals.append(EntityProposal(name, box))
    else:
        from_json = _from_json(answer, image_size, violations)
        if from_json is not None:
            proposals = from_json
        else:
            pieces = re.split(r"[\n,;]+", answer)
            proposals = [EntityProposal(_clean_name(p)) for p in pieces]

    entities: list[EntityProposal] = []
    seen: dict[str, EntityProposal] = {}
    for p in proposals:
        if not p.name:
            continue
        if len(p.name) > MAX_ENTITY_NAME_CHARS:
            violations.append(f"entity name too long ({len(p.name)} chars); dropped")
            continue
        key = p.name.lower()
        if key in seen:
            if seen[key].box is None and p.box is not None:
                seen[key].box = p.box
            continue
        seen[key] = p
        entities.append(p)
    if not entities:
        violations.append("no entities proposed")
    elif len(entities) > MAX_ENTITIES:
        violations.append(f"{len(entities)} entities proposed; kept the first {MAX_ENTITIES}")
        entities = entities[:MAX_ENTITIES]
    return ParsedEntities(entities=entities, think=parsed.think, violations=violations)


# --------------------------------------------------------------------------- voting

_ARTICLES = {"a", "an", "the"}
# No single letters: "N/A" or "Y-shaped fracture" must not become a yes/no vote.
_YES_WORDS = {"yes", "yeah", "yep", "true", "correct", "affirmative", "present", "positive"}
_NO_WORDS = {"no", "nope", "false", "incorrect", "negative", "absent", "none", "neither", "nil"}
_NEGATED_STARTS = (
    "there is no", "there are no", "there isnt", "there arent", "there is not", "there are not",
    "no evidence", "not seen", "not present", "not visible", "not identified", "not detected", "without",
)  # fmt: skip
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_PUNCT = re.compile(r"[^\w\s]")


def entities_from_reply(text: str, image_size: tuple[int, int]) -> tuple[list[Entity], list[str]]:
    """The entity model's reply as the record's proposed entities, and its format violations."""
    parsed = parse_entities(text, image_size=image_size)
    ents = [Entity(e.name, tuple(int(v) for v in e.box) if e.box is not None else None) for e in parsed.entities]
    return ents, list(parsed.violations)


# A question is yes/no when its first word is an auxiliary verb ("Is there ...?", "Does the
# liver ...?", "Can a nodule be seen?") or "any" ("Any effusion?"). It is NOT when it offers
# alternatives ("Is the nodule in the left or the right lung?"), unless it asks for existence
# ("Is there a nodule or a mass?"), nor when the auxiliary only wraps a wh-question ("Can you
# tell me which lobe ...?"). Everything else (what / which / where / how many / describe ...)
# is open.
_YES_NO_STARTS = {
    "is", "are", "was", "were", "am", "does", "do", "did", "has", "have", "had", "can", "could",
    "will", "would", "should", "shall", "may", "might", "must", "any",
    "isnt", "arent", "wasnt", "werent", "doesnt", "dont", "didnt", "hasnt", "havent", "hadnt",
    "cant", "couldnt", "wont", "wouldnt", "shouldnt",
}  # fmt: skip
_EXISTENCE_STARTS = ("is there", "are there", "was there", "were there", "is any", "are any")
_WH_WORDS = {"what", "which", "where", "when", "who", "whom", "whose", "why", "how"}


def _words(text: str) -> list[str]:
    text = _clean(text or "").lower().replace("\u2019", "'")
    return _PUNCT.sub(" ", text.replace("'", "")).split()


def question_kind(question: str) -> AnswerKind:
    """``yes/no`` or ``open`` for a question's wording (the rules are in the comment above)."""
    words = _words(question)
    if not words or words[0] not in _YES_NO_STARTS:
        return AnswerKind.OPEN
    joined = " ".join(words)
    if "or" in words and not joined.startswith(_EXISTENCE_STARTS):
        return AnswerKind.OPEN  # a choice between alternatives: the answer names one
    if words[1:2] == ["you"] and any(w in _WH_WORDS for w in words[2:6]):
        return AnswerKind.OPEN  # "can you tell me what ...": a wh-question in disguise
    return AnswerKind.YES_NO


def normalize_answer(s: str, question: str | None = None) -> str:
    """Canonical form for majority voting and scoring.

    Always: tags, case, punctuation and articles go, number words become digits ("The Left
    Lung." -> "left lung", "two" -> "2"). Only for a yes/no question (``question_kind``), or when
    no question is given (callers that know it is one), an answer starting with a yes word
    ("Yes, there is.", "present", "positive") becomes "yes" and one starting with a no word or a
    negation ("No evidence of X", "absent", "none", "there is no ...") becomes "no". For an open
    question the words stay: "What is present in the left lung?" -> "none" stays "none", and
    "No nodule" stays "no nodule" (not a vote for "no").
    """
    words = _words(re.sub(r"^\s*(?:final answer|answer)\s*[:\-]\s*", "", _clean(s or ""), flags=re.IGNORECASE))
    if not words:
        return ""
    if question is None or question_kind(question) is AnswerKind.YES_NO:
        joined = " ".join(words)
        if words[0] in _YES_WORDS:
            return "yes"
        if words[0] in _NO_WORDS or joined.startswith(_NEGATED_STARTS):
            return "no"
    words = [_NUMBER_WORDS.get(w, w) for w in words if w not in _ARTICLES]
    return " ".join(words)


# --------------------------------------------------------------------------- log-probs


def span_logprobs(generation: Generation, start: int, end: int) -> list[float]:
    """Log-probs of the generated tokens that overlap ``generation.text[start:end]``."""
    out, pos = [], 0
    for piece, lp in zip(generation.tokens, generation.token_logprobs):
        piece_end = pos + len(piece)
        if piece_end > start and pos < end:
            out.append(lp)
        elif pos >= end:
            break
        pos = piece_end
    return out


def answer_logprobs(generation: Generation, parsed: ParsedAnswer | None = None) -> list[float]:
    """Log-probs of the answer's tokens (empty when the output had no readable answer)."""
    parsed = parsed or parse_think_answer(generation.text)
    if parsed.answer_span is None:
        return []
    return span_logprobs(generation, *parsed.answer_span)


def mean_logprob(logprobs: Sequence[float]) -> float:
    """Length-normalised confidence used for tie-breaks (-inf when there is nothing to score)."""
    return sum(logprobs) / len(logprobs) if logprobs else float("-inf")
